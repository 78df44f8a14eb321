package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"go.yaml.in/yaml/v3"
)

// Set is one loaded plugin configuration: the filter chains by channel
// pattern, the policies, the authenticators and the listeners. The gateway
// holds one at a time and swaps it on reload; Retire cleans the old one up
// once nothing uses it. Its methods are safe for concurrent use.
type Set struct {
	routes         []route
	firsts         []string // the first segments of the patterns ("/chat"), unless anyFirst
	anyFirst       bool     // a pattern is "/*" or "/**": every channel may match
	Policies       []NamedPolicy
	Authenticators []NamedAuthenticator
	AllowAnonymous bool
	Sessions       []SessionListener
	Subscriptions  []SubscriptionListener
	Queues         []QueueListener

	modules []loaded // every module, for Cleanup and Stats
	log     *slog.Logger

	// cache maps channel names to their routes (nil for none): read
	// without locks, replaced by a copy with one more entry under cacheMu
	// (channels are few and long-lived; past maxCachedRoutes the patterns
	// are matched on each message instead).
	cache   atomic.Pointer[map[string]*Route]
	cacheMu sync.Mutex
	using   atomic.Int64
	retired atomic.Bool
	idle    chan struct{} // closed by the Release that leaves a retired set unused
	idleOne sync.Once
}

// loaded is a module and where the configuration made it.
type loaded struct {
	module any
	kind   Kind
	name   string // registered name
	place  string // place in the configuration ("filters[0].inbound[1]")
}

// NamedPolicy is a policy and the name of its module.
type NamedPolicy struct {
	Name string
	Policy
}

// NamedAuthenticator is an authenticator and the name of its module.
type NamedAuthenticator struct {
	Name string
	Authenticator
}

type route struct {
	pattern string
	in, out []*step
}

// step is one filter in a chain.
type step struct {
	name   string // module name
	f      Filter
	counts *FilterCounts
}

// Route is the filters a channel's messages run through. A nil *Route is
// a channel with none.
type Route struct {
	In, Out Chain
}

// Chain is filters in order.
type Chain []*step

// maxCachedRoutes bounds the channel-to-route cache; channels past it are
// matched against the patterns on each message.
const maxCachedRoutes = 8192

// Empty reports whether s has nothing to do on the message path: no
// filters, policies, authenticators or listeners.
func (s *Set) Empty() bool {
	return s == nil || len(s.routes) == 0 && len(s.Policies) == 0 && len(s.Authenticators) == 0 &&
		len(s.Sessions) == 0 && len(s.Subscriptions) == 0 && len(s.Queues) == 0
}

// HasFilters reports whether any channel has filters.
func (s *Set) HasFilters() bool { return s != nil && len(s.routes) > 0 }

// Route returns the filters for channel name (not a pattern), or nil when
// none applies. The result is cached per channel.
func (s *Set) Route(name string) *Route {
	if s == nil || len(s.routes) == 0 {
		return nil
	}
	if !s.anyFirst {
		// Most channels share no first segment with any pattern: they
		// are told apart without hashing their names.
		first := name
		for i := 1; i < len(name); i++ { // first segments are short: no call to IndexByte
			if name[i] == '/' {
				first = name[:i]
				break
			}
		}
		if !slices.Contains(s.firsts, first) {
			return nil
		}
	}
	if m := s.cache.Load(); m != nil {
		if r, ok := (*m)[name]; ok {
			return r
		}
	}
	r := s.resolve(name)
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	old := s.cache.Load()
	if old != nil && len(*old) >= maxCachedRoutes {
		return r
	}
	m := make(map[string]*Route, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[name] = r
	s.cache.Store(&m)
	return r
}

func lenOf(m *map[string]*Route) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func (s *Set) resolve(name string) *Route {
	var r Route
	for _, rt := range s.routes {
		if bayeux.Match(rt.pattern, name) {
			r.In = append(r.In, rt.in...)
			r.Out = append(r.Out, rt.out...)
		}
	}
	if len(r.In) == 0 && len(r.Out) == 0 {
		return nil
	}
	return &r
}

// Acquire marks s in use; it fails once s is retired (load the current set
// again). Each successful Acquire needs a Release.
func (s *Set) Acquire() bool {
	s.using.Add(1)
	if s.retired.Load() {
		s.Release()
		return false
	}
	return true
}

// Release ends a use begun by Acquire.
func (s *Set) Release() {
	if s.using.Add(-1) == 0 && s.retired.Load() {
		s.idleOne.Do(func() { close(s.idle) })
	}
}

// Retire stops new uses of s, waits (within ctx) until the current ones
// end, and cleans up its modules. It returns the cleanup errors, or ctx's
// error if uses outlived it (the modules are then cleaned up anyway:
// their calls must honour the contexts they were given).
func (s *Set) Retire(ctx context.Context) error {
	if s == nil || s.retired.Swap(true) {
		return nil
	}
	var waitErr error
	if s.using.Load() > 0 {
		select {
		case <-s.idle:
		case <-ctx.Done():
			waitErr = fmt.Errorf("plugins: retiring a configuration still in use: %w", ctx.Err())
		}
	}
	errs := []error{waitErr}
	for i := len(s.modules) - 1; i >= 0; i-- {
		if err := cleanup(s.modules[i].module); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run passes m through the chain's filters in order. It returns nil when
// every filter passed it (m.Data and m.Ext then hold the result), or the
// *Rejection to send: the first filter's rejection, or, for a filter that
// failed, panicked or produced invalid JSON, 500::filter_failed. Each
// outcome is counted on the filter.
func (c Chain) Run(ctx context.Context, m *Message, log *slog.Logger) *Rejection {
	for _, st := range c {
		data, ext := m.Data, m.Ext
		err := st.call(ctx, m)
		if err == nil {
			if changed(data, m.Data) || changed(ext, m.Ext) {
				if verr := validOutput(m); verr != nil {
					err = verr
				} else {
					st.counts.Rewritten.Add(1)
					continue
				}
			} else {
				st.counts.Passed.Add(1)
				continue
			}
		}
		if r, ok := AsRejection(err); ok {
			st.counts.Rejected.Add(1)
			return r
		}
		st.counts.Failed.Add(1)
		if log != nil {
			log.Warn("filter failed", "filter", st.name, "direction", m.Direction.String(), "channel", m.Channel, "err", err)
		}
		m.Data, m.Ext = data, ext
		return errFilterFailed
	}
	return nil
}

var errFilterFailed = &Rejection{Code: 500, Reason: "filter_failed"}

// call runs the filter, turning a panic into an error.
func (st *step) call(ctx context.Context, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("filter %s panicked: %v", st.name, p)
		}
	}()
	return st.f.Filter(ctx, m)
}

func changed(a, b []byte) bool {
	return len(a) != len(b) || len(a) > 0 && &a[0] != &b[0]
}

// validOutput checks what a filter produced: data valid JSON (UTF-8
// included), ext empty or a JSON object.
func validOutput(m *Message) error {
	if len(m.Data) == 0 {
		return errors.New("filter removed data")
	}
	if err := bayeux.ValidJSON(m.Data); err != nil {
		return fmt.Errorf("filter produced invalid data: %w", err)
	}
	if len(m.Ext) > 0 {
		if err := bayeux.ValidJSON(m.Ext); err != nil {
			return fmt.Errorf("filter produced invalid ext: %w", err)
		}
		if t := bytes.TrimLeft(m.Ext, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			return errors.New("filter produced an ext that is not an object")
		}
	}
	return nil
}

// FilterCounts are a filter's outcomes, cumulative across reloads.
type FilterCounts struct {
	Passed, Rewritten, Rejected, Failed atomic.Int64
}

// Counters keeps the outcome counts of filters, policies and
// authenticators for the life of the gateway, across reloads, by module
// name and place. Safe for concurrent use.
type Counters struct {
	mu      sync.Mutex
	filters map[FilterKey]*FilterCounts
}

// FilterKey names a filter's counts: its module name and direction.
type FilterKey struct {
	Module    string
	Direction Direction
}

// Filter returns the counts of key, made on first use.
func (c *Counters) Filter(key FilterKey) *FilterCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.filters == nil {
		c.filters = make(map[FilterKey]*FilterCounts)
	}
	fc := c.filters[key]
	if fc == nil {
		fc = new(FilterCounts)
		c.filters[key] = fc
	}
	return fc
}

// Filters calls fn for every filter's counts.
func (c *Counters) Filters(fn func(FilterKey, *FilterCounts)) {
	c.mu.Lock()
	keys := make([]FilterKey, 0, len(c.filters))
	vals := make([]*FilterCounts, 0, len(c.filters))
	for k, v := range c.filters {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	c.mu.Unlock()
	for i := range keys {
		fn(keys[i], vals[i])
	}
}

// Load builds a Set from cfg with the modules of reg. Each module is
// decoded strictly, provisioned and validated; on any failure, those
// already made are cleaned up and the errors returned, naming each
// entry's place in the configuration. counters may be nil.
func Load(ctx *Context, reg *Registry, cfg config.PluginsConfig, counters *Counters) (*Set, error) {
	if counters == nil {
		counters = new(Counters)
	}
	log := ctx.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Set{AllowAnonymous: cfg.AllowAnonymous, log: log, idle: make(chan struct{})}
	var errs []error
	decode := func(k Kind, place string, n *yaml.Node) (string, any) {
		mctx := *ctx
		mctx.Logger = log.With("plugin", place)
		name, m, err := reg.Decode(&mctx, k, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins.%s: %w", place, err))
			return "", nil
		}
		s.modules = append(s.modules, loaded{m, k, name, place})
		return name, m
	}
	for i, fc := range cfg.Filters {
		if len(fc.Channels) == 0 {
			errs = append(errs, fmt.Errorf("plugins.filters[%d].channels: at least one channel pattern is required", i))
		}
		for _, p := range fc.Channels {
			if _, _, ok := bayeux.ParseChannel(p); !ok {
				errs = append(errs, fmt.Errorf("plugins.filters[%d].channels: %q is not a channel or pattern", i, p))
			}
		}
		chain := func(dir Direction, nodes []yaml.Node) []*step {
			var out []*step
			for j := range nodes {
				name, m := decode(KindFilter, fmt.Sprintf("filters[%d].%s[%d]", i, dir, j), &nodes[j])
				if m == nil {
					continue
				}
				out = append(out, &step{name: name, f: m.(Filter), counts: counters.Filter(FilterKey{name, dir})})
			}
			return out
		}
		in, out := chain(Inbound, fc.Inbound), chain(Outbound, fc.Outbound)
		for _, p := range fc.Channels {
			s.routes = append(s.routes, route{pattern: p, in: in, out: out})
			first := p
			if i := strings.IndexByte(p[min(1, len(p)):], '/'); i >= 0 {
				first = p[:i+1]
			}
			switch {
			case first == "/*" || first == "/**":
				s.anyFirst = true
			case !slices.Contains(s.firsts, first):
				s.firsts = append(s.firsts, first)
			}
		}
	}
	for i := range cfg.Policies {
		if name, m := decode(KindPolicy, fmt.Sprintf("policies[%d]", i), &cfg.Policies[i]); m != nil {
			s.Policies = append(s.Policies, NamedPolicy{name, m.(Policy)})
		}
	}
	for i := range cfg.Authenticators {
		if name, m := decode(KindAuthenticator, fmt.Sprintf("authenticators[%d]", i), &cfg.Authenticators[i]); m != nil {
			s.Authenticators = append(s.Authenticators, NamedAuthenticator{name, m.(Authenticator)})
		}
	}
	for i := range cfg.Listeners {
		if _, m := decode(KindListener, fmt.Sprintf("listeners[%d]", i), &cfg.Listeners[i]); m != nil {
			if l, ok := m.(SessionListener); ok {
				s.Sessions = append(s.Sessions, l)
			}
			if l, ok := m.(SubscriptionListener); ok {
				s.Subscriptions = append(s.Subscriptions, l)
			}
			if l, ok := m.(QueueListener); ok {
				s.Queues = append(s.Queues, l)
			}
		}
	}
	if len(errs) > 0 {
		s.retired.Store(true)
		for i := len(s.modules) - 1; i >= 0; i-- {
			cleanup(s.modules[i].module)
		}
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Logger returns the logger s was loaded with.
func (s *Set) Logger() *slog.Logger { return s.log }

// Patterns returns how many channel patterns have filter chains.
func (s *Set) Patterns() int {
	if s == nil {
		return 0
	}
	return len(s.routes)
}

// Stats calls fn with the figures of each module of s that reports some
// (StatsReporter), with its module name and place in the configuration
// ("filters[0].inbound[1]").
func (s *Set) Stats(fn func(module, place string, st Stat)) {
	if s == nil {
		return
	}
	for _, m := range s.modules {
		r, ok := m.module.(StatsReporter)
		if !ok {
			continue
		}
		for _, st := range r.Stats() {
			fn(m.name, m.place, st)
		}
	}
}

// Listeners returns how many listener modules s has.
func (s *Set) Listeners() int {
	n := 0
	if s != nil {
		for _, m := range s.modules {
			if m.kind == KindListener {
				n++
			}
		}
	}
	return n
}
