package status

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Limits of one recorded log entry, so that the ring stays small.
const (
	maxMessageLen = 200
	maxAttrsLen   = 400
)

// Entry is one warning or error recorded from the log.
type Entry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs,omitempty"` // key=value pairs, cut to a bounded length
}

// Recorder keeps the last warnings and errors logged through a handler
// made by Handler, at most the size given to NewRecorder. It is safe for
// concurrent use.
type Recorder struct {
	mu   sync.Mutex // guards ring, next, n
	ring []Entry
	next int // where the next entry goes
	n    int // entries held, up to len(ring)
}

// NewRecorder returns a Recorder keeping the last size entries (at least 1).
func NewRecorder(size int) *Recorder {
	return &Recorder{ring: make([]Entry, max(size, 1))}
}

// Recent returns the entries held, oldest first.
func (r *Recorder) Recent() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, r.n)
	start := (r.next - r.n + len(r.ring)) % len(r.ring)
	for i := range r.n {
		out = append(out, r.ring[(start+i)%len(r.ring)])
	}
	return out
}

func (r *Recorder) add(e Entry) {
	r.mu.Lock()
	r.ring[r.next] = e
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// Handler returns a slog.Handler that records every record at warn level
// or above into r, whatever next's level, and passes the records next
// enables on to it.
func (r *Recorder) Handler(next slog.Handler) slog.Handler {
	return &recordingHandler{rec: r, next: next}
}

// recordingHandler is Recorder.Handler's wrapper.
type recordingHandler struct {
	rec    *Recorder
	next   slog.Handler
	prefix string // attributes added by WithAttrs, formatted
	group  string // groups opened by WithGroup, dot-separated with a final dot
}

var _ slog.Handler = (*recordingHandler)(nil)

func (h *recordingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *recordingHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(h.prefix)
		rec.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.group, a)
			return b.Len() < maxAttrsLen
		})
		h.rec.add(Entry{
			Time:    rec.Time,
			Level:   rec.Level.String(),
			Message: cut(rec.Message, maxMessageLen),
			Attrs:   cut(b.String(), maxAttrsLen),
		})
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	return &recordingHandler{rec: h.rec, next: h.next.WithAttrs(attrs), prefix: cut(b.String(), maxAttrsLen), group: h.group}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &recordingHandler{rec: h.rec, next: h.next.WithGroup(name), prefix: h.prefix, group: h.group + name + "."}
}

// appendAttr writes " key=value" (groups flattened with dots).
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, x := range v.Group() {
			appendAttr(b, g, x)
		}
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(v.String())
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
