package backend

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/internal/workers"
)

// Router owns the backend connections and routes of a node. Build it with
// New, pass it to the engine as its Policy and Extension, then Start it
// with the engine; Close cancels streams and calls and closes connections.
type Router struct {
	cfg      Config
	log      *slog.Logger
	backends map[string]*backendConn
	calls    table
	streams  table
	publish  table
	auth     *backendConn
	e        *engine.Engine

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // calls and streams in flight
	callers *workers.Pool  // run remote calls

	mu       sync.Mutex                  // guards inflight, open
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
	names := make([]string, 0, len(r.backends))
	for name := range r.backends {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
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
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 5 * time.Second
	}
	r := &Router{
		cfg:      cfg,
		log:      cfg.Logger,
		backends: make(map[string]*backendConn),
		inflight: make(map[*engine.Session]int),
		open:     make(map[streamKey]*activeStream),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.callers = workers.New(r.ctx.Done())
	fail := func(err error) (*Router, error) {
		r.Close(context.Background())
		return nil, err
	}
	for name, spec := range cfg.Backends {
		b, err := dial(name, spec)
		if err != nil {
			return fail(err)
		}
		r.backends[name] = b
	}
	for _, spec := range cfg.Routes {
		rt, err := compileRoute(spec)
		if err != nil {
			return fail(err)
		}
		if rt.b = r.backends[spec.Backend]; rt.b == nil {
			return fail(fmt.Errorf("route %s: no backend %q", rt.pattern, spec.Backend))
		}
		if rt.b.http != nil && spec.Type != TypeCall {
			return fail(fmt.Errorf("route %s: HTTP backend %q can only serve call routes", rt.pattern, spec.Backend))
		}
		var t *table
		switch spec.Type {
		case TypeCall:
			t = &r.calls
		case TypeStream:
			t = &r.streams
		case TypePublish:
			t = &r.publish
		}
		if *t, err = t.insert(rt); err != nil {
			return fail(err)
		}
	}
	if cfg.AuthBackend != "" {
		if r.auth = r.backends[cfg.AuthBackend]; r.auth == nil || r.auth.grpc == nil {
			return fail(fmt.Errorf("auth: no gRPC backend %q", cfg.AuthBackend))
		}
	}
	return r, nil
}

// Empty reports whether the router has nothing to do (no routes, no auth).
func (r *Router) Empty() bool {
	return len(r.calls)+len(r.streams)+len(r.publish) == 0 && r.auth == nil
}

// Start resolves the routes' dynamic methods (reading descriptor sets, or
// asking the backends' server reflection, within ctx), checks their
// streaming kinds, and installs the routes on e.
func (r *Router) Start(ctx context.Context, e *engine.Engine) error {
	byBackend := map[*backendConn][]string{}
	for _, t := range []table{r.calls, r.streams} {
		for _, rt := range t {
			if rt.Method != "" {
				byBackend[rt.b] = append(byBackend[rt.b], rt.Method)
			}
		}
	}
	for b, names := range byBackend {
		methods, err := resolveMethods(ctx, b, names)
		if err != nil {
			return err
		}
		for _, t := range []table{r.calls, r.streams} {
			for _, rt := range t {
				if rt.b != b || rt.Method == "" {
					continue
				}
				rt.method = methods[rt.Method]
				md := rt.method.desc
				switch {
				case rt.Type == TypeCall && (md.IsStreamingClient() || md.IsStreamingServer()):
					return fmt.Errorf("route %s: %s is a streaming method; call routes need a unary one", rt.pattern, rt.Method)
				case rt.Type == TypeStream && (md.IsStreamingClient() || !md.IsStreamingServer()):
					return fmt.Errorf("route %s: %s is not a server-streaming method", rt.pattern, rt.Method)
				}
			}
		}
	}
	r.e = e
	// One handler per route, on its own pattern, so that the engine knows
	// which /service/ channels are served (and answers the others with
	// 404::service_unknown); where routes overlap, only the most specific
	// one's handler acts.
	for _, t := range []table{r.calls, r.publish} {
		for _, rt := range t {
			if err := e.HandlePublish(rt.pattern, r.onPublish(t, rt)); err != nil {
				return err
			}
		}
	}
	if len(r.streams) > 0 {
		e.AddSubscriptionListener(r)
	}
	e.OnSessionRemoved(func(s *engine.Session, _ engine.CloseReason) {
		r.mu.Lock()
		delete(r.inflight, s)
		r.mu.Unlock()
	})
	return nil
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
	for _, b := range r.backends {
		b.close()
	}
	return err
}

// CallRoute returns the pattern of the call route that serves channel, or
// "" if none does.
func (r *Router) CallRoute(channel string) string {
	if rt := r.calls.match(channel); rt != nil {
		return rt.pattern
	}
	return ""
}

// onPublish returns the publish handler of route rt of table t: if rt is
// the most specific route of t for the channel, a remote call runs in the
// background and answers later, or a publish hook runs now.
func (r *Router) onPublish(t table, rt *route) engine.PublishHandler {
	return func(ctx context.Context, s *engine.Session, m *bayeux.Message) error {
		name, _, _ := bayeux.ParseChannel(m.Channel) // as the engine matched it
		if t.match(name) != rt {
			return nil // a more specific route's handler acts
		}
		if rt.Type == TypeCall {
			return r.startCall(ctx, rt, s, m)
		}
		return r.publishHook(ctx, rt, s, m)
	}
}

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
