package backend

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/internal/workers"
	"github.com/cometgate/cometgate/plugins"
)

// Router owns the backend connections and routes of a node. Build it with
// New, pass it to the engine as its Policy and Extension, then Start it
// with the engine; Reload replaces its backends and routes while it runs;
// Close cancels streams and calls and closes connections.
type Router struct {
	cfg Config
	log *slog.Logger
	cur atomic.Pointer[routing] // backends and routes now in force
	e   *engine.Engine

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // calls and streams in flight
	callers *workers.Pool  // run remote calls

	reloadMu sync.Mutex      // serialises Start, Reload and Close; guards handled, retired
	handled  map[string]bool // publish handlers installed, by route type and pattern
	retired  []*backendConn  // replaced connections, closed once idle

	mu       sync.Mutex                  // guards inflight, open and the swap of cur
	inflight map[*engine.Session]int     // remote calls in flight per session
	open     map[streamKey]*activeStream // streams by channel (contract) or route (method)

	invalid atomic.Int64 // stream messages dropped as not JSON in valid UTF-8
	counts  routerCounts
}

// routerCounts are cumulative counters of a Router.
type routerCounts struct {
	streamOpens   atomic.Int64 // upstream streams opened for a first subscriber
	streamReopens atomic.Int64 // upstream streams reopened after a break
	gaps          atomic.Int64 // gap notices published
	callsLimited  atomic.Int64 // remote calls refused by MaxCallsPerSession
}

// Counts are cumulative counters of a Router, for metrics.
type Counts struct {
	StreamOpens    int64 // upstream streams opened for a first subscriber
	StreamReopens  int64 // upstream streams reopened after a break
	Gaps           int64 // gap notices sent after a reopened stream skipped messages
	CallsLimited   int64 // remote calls refused by MaxCallsPerSession
	InvalidDropped int64 // stream messages dropped as not JSON in valid UTF-8
}

// Counts returns the router's counters.
func (r *Router) Counts() Counts {
	return Counts{
		StreamOpens:    r.counts.streamOpens.Load(),
		StreamReopens:  r.counts.streamReopens.Load(),
		Gaps:           r.counts.gaps.Load(),
		CallsLimited:   r.counts.callsLimited.Load(),
		InvalidDropped: r.invalid.Load(),
	}
}

// Names returns the configured backends' names, sorted.
func (r *Router) Names() []string {
	backends := r.cur.Load().backends
	names := make([]string, 0, len(backends))
	for name := range backends {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// routing is one generation of backends and routes, swapped whole by
// Reload; a call holds the generation it started with.
type routing struct {
	backends map[string]*backendConn
	calls    table
	streams  table
	publish  table
	auth     *backendConn
	authWait time.Duration // Config.AuthTimeout
}

func (g *routing) table(typ string) table {
	switch typ {
	case TypeCall:
		return g.calls
	case TypeStream:
		return g.streams
	}
	return g.publish
}

var (
	_ engine.Policy               = (*Router)(nil)
	_ engine.Extension            = (*Router)(nil)
	_ engine.SubscriptionListener = (*Router)(nil)
)

// New compiles the routes and creates (lazily connecting) clients for the
// backends. It fails on an unknown backend, an invalid or duplicate route,
// or unusable TLS files; methods are checked by Start.
func New(cfg Config) (*Router, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxCallsPerSession <= 0 {
		cfg.MaxCallsPerSession = 32
	}
	r := &Router{
		cfg:      cfg,
		log:      cfg.Logger,
		handled:  make(map[string]bool),
		inflight: make(map[*engine.Session]int),
		open:     make(map[streamKey]*activeStream),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.callers = workers.New(r.ctx.Done())
	g, _, err := build(cfg, nil)
	if err != nil {
		r.Close(context.Background())
		return nil, err
	}
	r.cur.Store(g)
	return r, nil
}

// build compiles cfg into a routing generation. Backends whose name and
// spec are unchanged from old (which may be nil) are kept, with their
// connection, and so are routes whose spec and backend are unchanged (with
// their resolved method); the others are new. It returns the connections
// it dialled, which the caller must close if it does not use them.
func build(cfg Config, old *routing) (*routing, []*backendConn, error) {
	authWait := cfg.AuthTimeout
	if authWait <= 0 {
		authWait = 5 * time.Second
	}
	g := &routing{backends: make(map[string]*backendConn), authWait: authWait}
	var dialled []*backendConn
	fail := func(err error) (*routing, []*backendConn, error) {
		for _, b := range dialled {
			b.close()
		}
		return nil, nil, err
	}
	for name, spec := range cfg.Backends {
		spec.setDefaults()
		if old != nil {
			if b := old.backends[name]; b != nil && reflect.DeepEqual(b.spec, spec) {
				g.backends[name] = b
				continue
			}
		}
		b, err := dial(name, spec)
		if err != nil {
			return fail(err)
		}
		g.backends[name] = b
		dialled = append(dialled, b)
	}
	for _, spec := range cfg.Routes {
		rt, err := compileRoute(spec)
		if err != nil {
			return fail(err)
		}
		if rt.b = g.backends[spec.Backend]; rt.b == nil {
			return fail(fmt.Errorf("route %s: no backend %q", rt.pattern, spec.Backend))
		}
		if rt.b.http != nil && spec.Type != TypeCall {
			return fail(fmt.Errorf("route %s: HTTP backend %q can only serve call routes", rt.pattern, spec.Backend))
		}
		if old != nil {
			if o := old.table(spec.Type).byPattern(rt.pattern); o != nil && o.b == rt.b && reflect.DeepEqual(o.RouteSpec, rt.RouteSpec) {
				rt = o
			}
		}
		for _, ch := range cfg.Reserved {
			if spec.Type == TypeCall && bayeux.Match(rt.pattern, ch) {
				return fail(fmt.Errorf("route %s: also matches %s, which the gateway serves itself", rt.pattern, ch))
			}
		}
		var t *table
		switch spec.Type {
		case TypeCall:
			t = &g.calls
		case TypeStream:
			t = &g.streams
		case TypePublish:
			t = &g.publish
		}
		if *t, err = t.insert(rt); err != nil {
			return fail(err)
		}
	}
	if cfg.AuthBackend != "" {
		if g.auth = g.backends[cfg.AuthBackend]; g.auth == nil || g.auth.grpc == nil {
			return fail(fmt.Errorf("auth: no gRPC backend %q", cfg.AuthBackend))
		}
	}
	return g, dialled, nil
}

// Empty reports whether the router has nothing to do (no routes, no auth).
func (r *Router) Empty() bool {
	g := r.cur.Load()
	return len(g.calls)+len(g.streams)+len(g.publish) == 0 && g.auth == nil
}

// Start resolves the routes' dynamic methods (reading descriptor sets, or
// asking the backends' server reflection, within ctx), checks their
// streaming kinds, and installs the routes on e.
func (r *Router) Start(ctx context.Context, e *engine.Engine) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	g := r.cur.Load()
	if err := resolve(ctx, g); err != nil {
		return err
	}
	r.e = e
	if err := r.install(g); err != nil {
		return err
	}
	e.AddSubscriptionListener(r)
	e.OnSessionRemoved(func(s *engine.Session, _ engine.CloseReason) {
		r.mu.Lock()
		delete(r.inflight, s)
		r.mu.Unlock()
	})
	connectRequired(g)
	return nil
}

// resolve resolves the dynamic methods of g's routes that have none yet
// and checks their streaming kinds.
func resolve(ctx context.Context, g *routing) error {
	byBackend := map[*backendConn][]string{}
	for _, t := range []table{g.calls, g.streams} {
		for _, rt := range t {
			if rt.Method != "" && rt.method == nil {
				byBackend[rt.b] = append(byBackend[rt.b], rt.Method)
			}
		}
	}
	for b, names := range byBackend {
		methods, err := resolveMethods(ctx, b, names)
		if err != nil {
			return err
		}
		for _, t := range []table{g.calls, g.streams} {
			for _, rt := range t {
				if rt.b != b || rt.Method == "" || rt.method != nil {
					continue
				}
				m := methods[rt.Method]
				md := m.desc
				switch {
				case rt.Type == TypeCall && (md.IsStreamingClient() || md.IsStreamingServer()):
					return fmt.Errorf("route %s: %s is a streaming method; call routes need a unary one", rt.pattern, rt.Method)
				case rt.Type == TypeStream && (md.IsStreamingClient() || !md.IsStreamingServer()):
					return fmt.Errorf("route %s: %s is not a server-streaming method", rt.pattern, rt.Method)
				}
			}
		}
		// Set only once all are checked: a refused reload leaves the
		// routes it shares with the running generation untouched.
		for _, t := range []table{g.calls, g.streams} {
			for _, rt := range t {
				if rt.b == b && rt.Method != "" && rt.method == nil {
					rt.method = methods[rt.Method]
				}
			}
		}
	}
	return nil
}

// install registers a publish handler for each call and publish route of
// g not yet handled. One handler per pattern, so that the engine knows
// which /service/ channels are served (and answers the others with
// 404::service_unknown); where routes overlap, only the most specific
// route's handler acts. A handler stays registered when its route is
// removed by a reload, and then answers its /service/ channels with
// 404::service_unknown itself. The caller holds reloadMu.
func (r *Router) install(g *routing) error {
	for _, typ := range []string{TypeCall, TypePublish} {
		for _, rt := range g.table(typ) {
			key := typ + " " + rt.pattern
			if r.handled[key] {
				continue
			}
			if err := r.e.HandlePublish(rt.pattern, r.onPublish(typ, rt.pattern)); err != nil {
				return err
			}
			r.handled[key] = true
		}
	}
	return nil
}

// connectRequired starts connecting the required backends of g at once,
// rather than on their first call, so that readiness reflects them.
func connectRequired(g *routing) {
	for _, b := range g.backends {
		if b.spec.Required && b.grpc != nil {
			b.grpc.Connect()
		}
	}
}

// Close cancels streams and calls in flight, waits for them within ctx and
// closes the backend connections. It is safe on a partly built Router.
func (r *Router) Close(ctx context.Context) error {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if g := r.cur.Load(); g != nil {
		for _, b := range g.backends {
			b.close()
		}
	}
	for _, b := range r.retired {
		b.close()
	}
	r.retired = nil
	return err
}

// CallRoute returns the pattern of the call route that serves channel, or
// "" if none does.
func (r *Router) CallRoute(channel string) string {
	if rt := r.cur.Load().calls.match(channel); rt != nil {
		return rt.pattern
	}
	return ""
}

// onPublish returns the publish handler of the routes of type typ on
// pattern: if such a route is, in the routing now in force, the most
// specific one of its type for the channel, a remote call runs in the
// background and answers later, or a publish hook runs now. If no call
// route serves the channel any more (a reload removed it), the call is
// answered with 404::service_unknown.
func (r *Router) onPublish(typ, pattern string) engine.PublishHandler {
	return func(ctx context.Context, s *engine.Session, m *bayeux.Message) error {
		if typ == TypePublish && engine.SourceFrom(ctx) == plugins.FromBackend {
			return nil // a backend's own stream message: publish hooks are for clients and the API
		}
		name, _, _ := bayeux.ParseChannel(m.Channel) // as the engine matched it
		for range 2 {
			rt := r.cur.Load().table(typ).match(name)
			switch {
			case rt == nil && typ == TypeCall:
				return errServiceUnknown
			case rt == nil || rt.pattern != pattern:
				return nil // a more specific route's handler acts, or none
			}
			if !rt.b.acquire() {
				continue // replaced meanwhile: look again
			}
			if rt.Type == TypeCall {
				return r.startCall(ctx, rt, s, m)
			}
			defer rt.b.release()
			return r.publishHook(ctx, rt, s, m)
		}
		return ErrorFromStatus(errShuttingDown)
	}
}

// errServiceUnknown answers a call on a /service/ channel whose route a
// reload removed, as the engine answers those never routed.
var errServiceUnknown = &bayeux.Error{Code: 404, Message: "service_unknown"}

var errTooManyCalls = &bayeux.Error{Code: 429, Message: "too_many_calls"}

func (r *Router) acquireCall(s *engine.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight[s] >= r.cfg.MaxCallsPerSession {
		return false
	}
	r.inflight[s]++
	return true
}

func (r *Router) releaseCall(s *engine.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight[s]--; r.inflight[s] <= 0 {
		delete(r.inflight, s)
	}
}

// timeout returns the deadline of a call on rt: the route's or backend's
// timeout, shortened by the client's ext.timeout (milliseconds) if any.
func timeout(rt *route, ext []byte) time.Duration {
	d := rt.b.spec.Timeout
	if rt.Timeout > 0 {
		d = rt.Timeout
	}
	if v, ok := engine.ExtValue(ext, "timeout"); ok {
		var ms float64
		if _, err := fmt.Sscan(string(v), &ms); err == nil && ms > 0 {
			if c := time.Duration(ms * float64(time.Millisecond)); c < d {
				d = c
			}
		}
	}
	return d
}
