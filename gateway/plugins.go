package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/standard"
)

// WithRegistry sets the plugin modules that the configuration's plugins
// section may name. Default: standard.Registry(), the built-in modules.
// An embedder with modules of its own registers them on a
// standard.Registry() and passes it here.
func WithRegistry(r *plugins.Registry) Option {
	return optionFunc(func(s *Server) { s.registry = r })
}

// retireTimeout bounds how long a replaced plugin configuration waits for
// the messages under way in it before its modules are cleaned up.
const retireTimeout = 30 * time.Second

// loadPlugins builds the plugin set of cfg.
func (s *Server) loadPlugins(ctx context.Context, cfg config.PluginsConfig) (*plugins.Set, error) {
	if s.registry == nil {
		s.registry = standard.Registry()
	}
	pctx := &plugins.Context{Context: ctx, Logger: s.log, Shared: s.pluginShared}
	if s.configPath != "" {
		pctx.Dir = filepath.Dir(s.configPath)
	}
	set, err := plugins.Load(pctx, s.registry, cfg, s.pluginCounters)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return set, nil
}

// swapPlugins makes set the engine's and retires the previous set in the
// background, once the messages under way in it are done.
func (s *Server) swapPlugins(set *plugins.Set) {
	old := s.engine.SetPlugins(set)
	if old == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
		defer cancel()
		if err := old.Retire(ctx); err != nil {
			s.log.Warn("replaced plugins cleaned up with errors", "err", err)
		}
	}()
}

// closePlugins retires the current set and the values shared across
// reloads (compilation caches), within ctx.
func (s *Server) closePlugins(ctx context.Context) error {
	var err error
	if set := s.engine.SetPlugins(nil); set != nil {
		err = set.Retire(ctx)
	}
	if e := s.pluginShared.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

// pluginSummary describes a loaded set in one line, for the reload log.
func pluginSummary(set *plugins.Set) string {
	if set.Empty() {
		return "plugins: none"
	}
	return fmt.Sprintf("plugins: %d filter chain patterns, %d policies, %d authenticators, %d listeners reloaded",
		set.Patterns(), len(set.Policies), len(set.Authenticators), set.Listeners())
}
