package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/demo"
)

// WithConfigFile names the configuration file the server was loaded from
// (gateway -config), which Reload reads again. Without it Reload has
// nothing to read and fails with ErrNoConfigFile.
func WithConfigFile(path string) Option {
	return optionFunc(func(s *Server) { s.configPath = path })
}

// ErrNoConfigFile is returned by Reload on a server started without a
// configuration file.
var ErrNoConfigFile = errors.New("gateway: no configuration file to reload (started without -config)")

// ReloadResult says what a successful Reload did.
type ReloadResult struct {
	// Applied lists what changed while running, one line each
	// ("route call /service/x added", "log.level: info -> debug").
	Applied []string
	// NeedsRestart lists the settings (dotted paths, "listen",
	// "transports.websocket.poller") whose new values differ from those
	// the server runs with and apply only after a restart.
	NeedsRestart []string
}

// liveFields are the settings Reload applies while running; a changed
// setting not listed (or under a listed prefix) needs a restart.
var liveFields = append([]string{"backends", "routes", "auth.timeout", "log.level", "log.format", "plugins"}, settingFields...)

// settingFields are the live settings the engine, the transport and the
// listener read at each use (engineLimits, transportLive). cookie.name is
// not among them: the sessions of browsers holding the cookie under its
// old name would no longer be recognised. Nor is
// bayeux.maxSessionsPerBrowser, whose count of held polls is kept only
// while it is limited.
var settingFields = []string{
	"limits", "bayeux.maxQueue", "bayeux.maxQueueBytes", "bayeux.trustClientSession", "bayeux.multiSessionInterval",
	"cors", "cookie.path", "cookie.domain", "cookie.maxAge", "cookie.secure", "cookie.httpOnly", "cookie.sameSite",
}

// under reports whether the dotted path f is one of paths or under one.
func under(f string, paths []string) bool {
	return slices.ContainsFunc(paths, func(p string) bool { return f == p || strings.HasPrefix(f, p+".") })
}

// Reload reads the configuration file again and validates it as
// config.Load does. An invalid file is refused: every error is logged,
// the error returned, and the running configuration is kept. A valid one
// is applied where it can be while running: backends and routes (see
// backend.Router.Reload: new connections before old ones close, calls in
// flight finish); the settings of settingFields (limits, queue bounds,
// CORS, the cookie but its name, trustClientSession,
// multiSessionInterval), for the requests, websocket upgrades and frames,
// subscribes and queued messages that follow; and, when the server's
// logger was built with NewLogHandler, log.level and log.format. Settings that cannot change
// while running are logged, each by name, as needing a restart, and
// returned in NeedsRestart. No session and no held connect is dropped.
// With tls.mode files, Reload also reloads the certificate files if they
// changed, whatever becomes of the configuration.
// Reloads are serialised; Reload may be called from any goroutine once
// Start returned.
func (s *Server) Reload(ctx context.Context) (*ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if f, ok := s.certs.(*fileCerts); ok {
		f.check() // SIGHUP also looks at the certificate files
	}
	if s.configPath == "" {
		s.log.Warn("reload: " + ErrNoConfigFile.Error())
		return nil, ErrNoConfigFile
	}
	s.log.Info("reloading configuration", "file", s.configPath)
	cfg, err := config.Load(s.configPath)
	if err != nil {
		for _, e := range flatten(err) {
			s.log.Error("reload refused: invalid configuration; the running one is kept", "file", s.configPath, "err", e)
		}
		return nil, fmt.Errorf("reload %s: %w", s.configPath, err)
	}
	if cfg.Auth.Backend != "" && s.cfg.Auth.Backend == "" {
		// The auth hook is installed on the engine at start only.
		err := fmt.Errorf("auth.backend: %q: enabling the auth backend needs a restart", cfg.Auth.Backend)
		s.log.Error("reload refused; the running configuration is kept", "file", s.configPath, "err", err)
		return nil, fmt.Errorf("reload %s: %w", s.configPath, err)
	}
	// Plugins are loaded (files read, modules compiled) before anything
	// changes, so that a bad module refuses the whole reload.
	set, err := s.loadPlugins(ctx, cfg.Plugins)
	if err != nil {
		for _, e := range flatten(err) {
			s.log.Error("reload refused: plugins cannot be loaded; the running configuration is kept", "file", s.configPath, "err", e)
		}
		return nil, fmt.Errorf("reload %s: %w", s.configPath, err)
	}
	bc := backendConfig(cfg, s.log)
	if *s.cfg.Demo.Enabled {
		bc.Reserved = demo.Channels()
	}
	changes, err := s.backends.Reload(ctx, bc)
	if err != nil {
		set.Retire(ctx)
		s.log.Error("reload refused: backends or routes cannot be applied; the running configuration is kept", "file", s.configPath, "err", err)
		return nil, fmt.Errorf("reload %s: %w", s.configPath, err)
	}
	res := &ReloadResult{Applied: changes}
	if !set.Empty() || s.engine.Plugins() != nil {
		res.Applied = append(res.Applied, pluginSummary(set))
	}
	s.swapPlugins(set)
	old := s.live
	s.engine.SetLimits(engineLimits(cfg))
	tl := transportLive(cfg)
	tl.Cookie.Name = s.cfg.Cookie.Name // needs a restart
	s.transport.SetLive(tl)
	if l := s.connLimit.Load(); l != nil {
		l.SetMax(cfg.Limits.MaxConnectionsPerAddress)
	}
	for _, f := range changedFields("", reflect.ValueOf(*old), reflect.ValueOf(*cfg)) {
		if under(f, settingFields) {
			res.Applied = append(res.Applied, f+" changed")
		}
	}
	if lh := s.logHandler; lh != nil {
		lh.Apply(cfg.Log)
		if old.Log.Level != cfg.Log.Level {
			res.Applied = append(res.Applied, fmt.Sprintf("log.level: %s -> %s", old.Log.Level, cfg.Log.Level))
		}
		if old.Log.Format != cfg.Log.Format {
			res.Applied = append(res.Applied, fmt.Sprintf("log.format: %s -> %s", old.Log.Format, cfg.Log.Format))
		}
	} else {
		// An embedder's own logger: not ours to change.
		cfg.Log = s.cfg.Log
	}
	for _, f := range changedFields("", reflect.ValueOf(*s.cfg), reflect.ValueOf(*cfg)) {
		if !under(f, liveFields) {
			res.NeedsRestart = append(res.NeedsRestart, f)
		}
	}
	if !slices.Equal(keptHeaders(s.cfg), keptHeaders(cfg)) {
		res.NeedsRestart = append(res.NeedsRestart, "backends.*.headers/cookies (the request headers websocket sessions keep)")
	}
	s.live = cfg
	for _, f := range res.NeedsRestart {
		s.log.Warn("reload: setting changed but needs a restart", "field", f)
	}
	s.log.Info("configuration reloaded", "file", s.configPath, "applied", len(res.Applied), "needsRestart", len(res.NeedsRestart))
	for _, c := range res.Applied {
		s.log.Info("reload applied", "change", c)
	}
	return res, nil
}

// flatten lists the errors joined in err (a validation reports all at
// once), or err alone.
func flatten(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if e != config.ErrInvalid { // the sentinel wrapping them all
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// changedFields returns the dotted YAML paths of the leaves that differ
// between a and b (structs of the same type); maps and slices count as
// one leaf. Values are never returned: some are secrets.
func changedFields(prefix string, a, b reflect.Value) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	t := a.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		out = append(out, changedFields(name, a.Field(i), b.Field(i))...)
	}
	return out
}

// Ready reports whether the node is ready for traffic, and if not, why:
// one reason per line item ("starting", "draining", "backend b
// unreachable").
func (s *Server) Ready() (bool, []string) {
	var why []string
	if !s.started.Load() {
		why = append(why, "starting")
	}
	if s.engine.Closing() {
		why = append(why, "draining: shutting down")
	}
	for _, name := range s.backends.Unreachable() {
		why = append(why, "backend "+name+" unreachable (required)")
	}
	if s.certs != nil {
		why = append(why, s.certs.Problems()...)
	}
	return len(why) == 0, why
}

// readyz answers 200 "ready" or 503 with one reason per line.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ok, why := s.Ready()
	if ok {
		w.Write([]byte("ready\n"))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(strings.Join(why, "\n") + "\n"))
}

// reloadForAPI is the control API's Reload.
func (s *Server) reloadForAPI(ctx context.Context) (applied, needsRestart []string, err error) {
	res, err := s.Reload(ctx)
	if err != nil {
		return nil, nil, err
	}
	return res.Applied, res.NeedsRestart, nil
}
