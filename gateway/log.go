package gateway

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cometgate/cometgate/config"
)

// LogHandler is a slog.Handler whose level and format (text or JSON) a
// configuration reload changes while it is in use. Build one with
// NewLogHandler and pass slog.New(h) to WithLogger: Server.Reload then
// applies log.level and log.format to it. It is safe for concurrent use;
// handlers derived with WithAttrs and WithGroup follow their root's
// changes.
type LogHandler struct {
	root  *logRoot
	ops   []func(slog.Handler) slog.Handler // WithAttrs/WithGroup, in order
	cache atomic.Pointer[derived]           // ops applied to a generation
}

// logRoot is what a LogHandler and those derived from it share.
type logRoot struct {
	w      io.Writer
	level  slog.LevelVar
	format atomic.Pointer[string]
	cur    atomic.Pointer[logGen]
}

// logGen is one format's handler; replaced whole when the format changes.
type logGen struct{ h slog.Handler }

type derived struct {
	gen *logGen
	h   slog.Handler
}

var _ slog.Handler = (*LogHandler)(nil)

// NewLogHandler returns a handler writing to w at c's level and in c's
// format (validated by config).
func NewLogHandler(w io.Writer, c config.LogConfig) *LogHandler {
	h := &LogHandler{root: &logRoot{w: w}}
	h.Apply(c)
	return h
}

// Apply sets the level and format of h and of every handler derived from
// it, and reports whether either changed.
func (h *LogHandler) Apply(c config.LogConfig) bool {
	r := h.root
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	changed := r.level.Level() != level
	r.level.Set(level)
	if f := r.format.Load(); f != nil && *f == c.Format {
		return changed
	}
	format := c.Format
	opts := &slog.HandlerOptions{Level: &r.level}
	var inner slog.Handler
	if format == "json" {
		inner = slog.NewJSONHandler(r.w, opts)
	} else {
		inner = slog.NewTextHandler(r.w, opts)
	}
	r.cur.Store(&logGen{h: inner})
	r.format.Store(&format)
	return true
}

// Enabled reports whether level is at or above the configured level.
func (h *LogHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.root.level.Level()
}

// Handle writes rec in the format now configured.
func (h *LogHandler) Handle(ctx context.Context, rec slog.Record) error {
	return h.handler().Handle(ctx, rec)
}

// handler returns the current format's handler with h's attributes and
// groups, built once per format change.
func (h *LogHandler) handler() slog.Handler {
	gen := h.root.cur.Load()
	if d := h.cache.Load(); d != nil && d.gen == gen {
		return d.h
	}
	out := gen.h
	for _, op := range h.ops {
		out = op(out)
	}
	h.cache.Store(&derived{gen: gen, h: out})
	return out
}

// WithAttrs returns a handler adding attrs to every record.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.derive(func(x slog.Handler) slog.Handler { return x.WithAttrs(attrs) })
}

// WithGroup returns a handler qualifying later attributes with name.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	return h.derive(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *LogHandler) derive(op func(slog.Handler) slog.Handler) *LogHandler {
	ops := append(h.ops[:len(h.ops):len(h.ops)], op)
	return &LogHandler{root: h.root, ops: ops}
}
