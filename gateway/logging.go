package gateway

import (
	"log/slog"
	"slices"
	"strings"
)

// ReplaceLogAttr renders durations as strings ("3.2s", as
// time.Duration.String does) in every handler, so that JSON logs, which
// would print nanoseconds, read as text logs do. Use it as the
// slog.HandlerOptions.ReplaceAttr of the server's logger.
func ReplaceLogAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// logStartup logs, at info level, what the node serves: its transports,
// where /metrics is, and each backend and route.
func (s *Server) logStartup() {
	cfg := s.cfg
	metrics := "off"
	switch {
	case cfg.Metrics.Public:
		metrics = "public listener"
	case cfg.APIEnabled() && cfg.APIOnPublic():
		metrics = "public listener, with API authentication"
	case cfg.APIEnabled():
		metrics = "API listener"
	}
	s.log.Info("cometgate serving", "transports", strings.Join(cfg.Bayeux.ConnectionTypes, ","),
		"backends", len(cfg.Backends), "routes", len(cfg.Routes), "auth", cfg.Auth.Backend, "metrics", metrics)
	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b := cfg.Backends[name]
		if b.URL != "" {
			s.log.Info("backend", "name", name, "url", b.URL)
			continue
		}
		mode := b.TLS.Mode
		if mode == "" {
			mode = "plaintext"
		}
		s.log.Info("backend", "name", name, "target", b.Target, "tls", mode)
	}
	for _, r := range cfg.Routes {
		args := []any{"channel", r.Channel, "type", r.Type, "backend", r.Backend}
		if r.Method != "" {
			args = append(args, "method", r.Method)
		}
		s.log.Info("route", args...)
	}
}

// shutdownStep logs a step of Shutdown: at info level, or as a warning
// with err if it failed.
func (s *Server) shutdownStep(step string, err error) {
	if err != nil {
		s.log.Warn("shutdown: "+step, "err", err)
		return
	}
	s.log.Info("shutdown: " + step)
}
