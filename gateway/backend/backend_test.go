package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/backend"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	examplev1 "github.com/cometgate/cometgate/proto/gen/example/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

const testTimeout = 10 * time.Second

// contract is a Backend server whose methods the tests set.
type contract struct {
	backendv1.UnimplementedBackendServer
	call      func(context.Context, *backendv1.CallRequest) (*backendv1.CallResponse, error)
	subscribe func(*backendv1.SubscribeRequest, grpc.ServerStreamingServer[backendv1.StreamMessage]) error
	publish   func(context.Context, *backendv1.PublishRequest) (*backendv1.PublishResponse, error)
	handshake func(context.Context, *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error)
}

func (c *contract) Call(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	return c.call(ctx, r)
}

func (c *contract) Subscribe(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
	return c.subscribe(r, s)
}

func (c *contract) Publish(ctx context.Context, r *backendv1.PublishRequest) (*backendv1.PublishResponse, error) {
	return c.publish(ctx, r)
}

func (c *contract) Handshake(ctx context.Context, r *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error) {
	return c.handshake(ctx, r)
}

// plain implements the example services, which know nothing of Bayeux.
type plain struct {
	examplev1.UnimplementedCalculatorServer
	examplev1.UnimplementedTickerServer
}

func (plain) Add(_ context.Context, r *examplev1.AddRequest) (*examplev1.AddResponse, error) {
	return &examplev1.AddResponse{Sum: r.GetA() + r.GetB()}, nil
}

func (plain) Watch(r *examplev1.WatchRequest, s grpc.ServerStreamingServer[examplev1.Quote]) error {
	for i := int64(1); ; i++ {
		for _, sym := range r.GetSymbols() {
			if err := s.Send(&examplev1.Quote{Symbol: sym, Price: 100 + float64(i), Sequence: i}); err != nil {
				return err
			}
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serve starts a gRPC server on loopback with reflection and returns its
// address; it stops at the end of the test.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	reflection.Register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

type node struct {
	e *engine.Engine
	r *backend.Router
}

// newNode builds an engine with a router for cfg and starts both.
func newNode(t *testing.T, cfg backend.Config) *node {
	t.Helper()
	r, err := backend.New(cfg)
	if err != nil {
		t.Fatalf("backend.New: %v", err)
	}
	var opts []engine.Option
	if cfg.AuthBackend != "" {
		opts = append(opts, engine.WithPolicy(r), engine.WithExtension(r))
	}
	e := engine.New(engine.Config{}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.Start(ctx, e); err != nil {
		t.Fatalf("Router.Start: %v", err)
	}
	e.Start(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		e.Close(ctx)
		r.Close(ctx)
	})
	return &node{e: e, r: r}
}

func spec(target string) backend.Spec {
	return backend.Spec{Target: target, Timeout: 2 * time.Second, RetryAttempts: 3, RetryBackoff: 10 * time.Millisecond, RetryMaxBackoff: 50 * time.Millisecond, MaxMessageBytes: 1 << 20}
}

type client struct {
	t *testing.T
	n *node
	c *engine.Client
	s *engine.Session
}

var browsers atomic.Int64

func (n *node) client(t *testing.T, ext string) (*client, *bayeux.Message) {
	t.Helper()
	c := &engine.Client{Transport: "long-polling", Browser: fmt.Sprint("b", browsers.Add(1)), Header: map[string][]string{"Authorization": {"Bearer t0k"}}}
	cl := &client{t: t, n: n, c: c}
	if ext == "" {
		ext = "{}"
	}
	r := cl.send(`{"channel":"/meta/handshake","ext":` + ext + `}`)
	if !r.Successful {
		return cl, r
	}
	cl.s = n.e.Session(r.ClientID)
	cl.send(`{"channel":"/meta/connect","clientId":"` + cl.s.ID() + `"}`)
	return cl, r
}

func (c *client) send(raw string) *bayeux.Message {
	c.t.Helper()
	raw = strings.ReplaceAll(raw, "$ID", func() string {
		if c.s == nil {
			return ""
		}
		return c.s.ID()
	}())
	msgs, err := bayeux.Decode([]byte(raw), 0)
	if err != nil {
		c.t.Fatalf("Decode(%s): %v", raw, err)
	}
	b := c.n.e.Process(context.Background(), c.c, msgs)
	x := b.Exchanges[0]
	if x.IsConnect() && x.Reply.Successful {
		x.Session.Complete(x, nil, 0)
	}
	b.End()
	return x.Reply
}

// next waits for the next event queued for the client.
func (c *client) next() map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		if evs := c.s.Take(nil, 1); len(evs) > 0 {
			// Put back the rest: Take(…, 1 byte) took exactly one.
			var m map[string]any
			if err := json.Unmarshal(evs[0], &m); err != nil {
				c.t.Fatal(err)
			}
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no event arrived")
	return nil
}

func (c *client) none(d time.Duration) {
	c.t.Helper()
	time.Sleep(d)
	if evs := c.s.Take(nil, 0); len(evs) > 0 {
		c.t.Fatalf("unexpected events: %q", evs)
	}
}

func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	within(t, testTimeout, what, fn)
}

// within polls fn until it reports true, failing the test after d.
func within(t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemoteCallContract(t *testing.T) {
	var got *backendv1.CallRequest
	var md []string
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{call: func(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			got = r
			md = metadataOf(ctx, "authorization", backend.MDClientID, "x-static")
			switch r.GetChannel() {
			case "/service/missing":
				return nil, status.Error(codes.NotFound, "no such room")
			}
			return &backendv1.CallResponse{Data: []byte(`{"echo":` + string(r.GetData()) + `}`)}, nil
		}})
	})
	sp := spec(addr)
	sp.Headers = []string{"Authorization"}
	sp.Metadata = map[string]string{"x-static": "v"}
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": sp}, Routes: []backend.RouteSpec{{Channel: "/service/**", Backend: "b", Type: backend.TypeCall}}})
	c, _ := n.client(t, "")

	ack := c.send(`{"id":"7","channel":"/service/rooms/join","clientId":"$ID","data":{"room":"x"},"ext":{"k":1}}`)
	if !ack.Successful || len(ack.Data) != 0 {
		t.Fatalf("publish ack = %s; want successful without data", ack)
	}
	reply := c.next()
	if reply["channel"] != "/service/rooms/join" || reply["id"] != "7" || reply["successful"] != true || fmt.Sprint(reply["data"]) != "map[echo:map[room:x]]" {
		t.Errorf("reply = %v", reply)
	}
	if got.GetChannel() != "/service/rooms/join" || got.GetCaller().GetClientId() != c.s.ID() || got.GetMessageId() != "7" || string(got.GetExt()) != `{"k":1}` {
		t.Errorf("backend got %v", got)
	}
	if strings.Join(md, "|") != "Bearer t0k|"+c.s.ID()+"|v" {
		t.Errorf("metadata = %q; want forwarded header, client id and static metadata", md)
	}

	c.send(`{"id":"8","channel":"/service/missing","clientId":"$ID","data":{}}`)
	reply = c.next()
	if reply["successful"] != false || reply["error"] != "404:NotFound:no such room" || reply["id"] != "8" {
		t.Errorf("failed call reply = %v", reply)
	}
	if d, _ := reply["data"].(map[string]any); d["code"] != "NotFound" {
		t.Errorf("failure data = %v", reply["data"])
	}
}

func metadataOf(ctx context.Context, keys ...string) []string {
	md, _ := metadataFromIncoming(ctx)
	var out []string
	for _, k := range keys {
		out = append(out, strings.Join(md[k], ","))
	}
	return out
}

func TestRemoteCallDeadlines(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{call: func(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	})
	sp := spec(addr)
	sp.Timeout = 200 * time.Millisecond
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": sp}, Routes: []backend.RouteSpec{
		{Channel: "/service/slow", Backend: "b", Type: backend.TypeCall},
		{Channel: "/service/slower", Backend: "b", Type: backend.TypeCall, Timeout: 5 * time.Second},
	}})
	c, _ := n.client(t, "")
	c.send(`{"id":"1","channel":"/service/slow","clientId":"$ID","data":{}}`)
	if r := c.next(); r["error"] != "504:DeadlineExceeded:no reply within 200ms" {
		t.Errorf("slow call = %v", r)
	}
	// The client's own timeout (ext.timeout, ms) shortens the route's 5s.
	c.send(`{"id":"2","channel":"/service/slower","clientId":"$ID","data":{},"ext":{"timeout":100}}`)
	if r := c.next(); r["error"] != "504:DeadlineExceeded:no reply within 100ms" {
		t.Errorf("call with client timeout = %v", r)
	}
}

func TestRemoteCallUnavailableAndRetry(t *testing.T) {
	var calls atomic.Int32
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{call: func(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			if calls.Add(1)%2 == 1 {
				return nil, status.Error(codes.Unavailable, "warming up")
			}
			return &backendv1.CallResponse{Data: []byte(`"ok"`)}, nil
		}})
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{"b": spec(addr), "down": spec(dead)},
		Routes: []backend.RouteSpec{
			{Channel: "/service/idem", Backend: "b", Type: backend.TypeCall, Idempotent: true},
			{Channel: "/service/once", Backend: "b", Type: backend.TypeCall},
			{Channel: "/service/down", Backend: "down", Type: backend.TypeCall},
		},
	})
	c, _ := n.client(t, "")
	c.send(`{"id":"1","channel":"/service/idem","clientId":"$ID","data":{}}`)
	if r := c.next(); r["successful"] != true || r["data"] != "ok" {
		t.Errorf("idempotent call after one Unavailable = %v; want retried and successful", r)
	}
	c.send(`{"id":"2","channel":"/service/once","clientId":"$ID","data":{}}`)
	if r := c.next(); r["successful"] != false || !strings.HasPrefix(r["error"].(string), "503:Unavailable:") {
		t.Errorf("non-idempotent call = %v; want the Unavailable error, not retried", r)
	}
	c.send(`{"id":"3","channel":"/service/down","clientId":"$ID","data":{}}`)
	if r := c.next(); r["successful"] != false || !strings.HasPrefix(r["error"].(string), "503:Unavailable:") {
		t.Errorf("call to a dead backend = %v", r)
	}
}

func TestDynamicMethods(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		examplev1.RegisterCalculatorServer(s, plain{})
		examplev1.RegisterTickerServer(s, plain{})
	})
	for _, mode := range []string{"reflection", "descriptor set"} {
		t.Run(mode, func(t *testing.T) {
			sp := spec(addr)
			if mode == "descriptor set" {
				sp.Descriptors = "../../proto/gen/example/v1/example.pb"
			}
			n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"p": sp}, Routes: []backend.RouteSpec{
				{Channel: "/service/calc/add", Backend: "p", Type: backend.TypeCall, Method: "example.v1.Calculator/Add"},
				{Channel: "/quotes/*", Backend: "p", Type: backend.TypeStream, Method: "example.v1.Ticker/Watch",
					Request: []byte(`{"symbols":["ACME","GLOBEX"]}`), ChannelTemplate: "/quotes/{symbol}"},
			}})
			c, _ := n.client(t, "")
			c.send(`{"id":"1","channel":"/service/calc/add","clientId":"$ID","data":{"a":2,"b":40}}`)
			if r := c.next(); r["successful"] != true || fmt.Sprint(r["data"]) != "map[sum:42]" {
				t.Errorf("Add = %v", r)
			}
			c.send(`{"id":"2","channel":"/service/calc/add","clientId":"$ID","data":{"a":"x"}}`)
			if r := c.next(); r["successful"] != false || !strings.HasPrefix(r["error"].(string), "400:InvalidArgument:") {
				t.Errorf("Add with bad data = %v", r)
			}
			c.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/quotes/ACME"}`)
			q := c.next()
			d, _ := q["data"].(map[string]any)
			if q["channel"] != "/quotes/ACME" || d["symbol"] != "ACME" {
				t.Errorf("quote = %v", q)
			}
			if n.r.OpenStreams() != 1 {
				t.Errorf("open streams = %d; want 1", n.r.OpenStreams())
			}
			c.send(`{"channel":"/meta/unsubscribe","clientId":"$ID","subscription":"/quotes/ACME"}`)
			eventually(t, "stream closed", func() bool { return n.r.OpenStreams() == 0 })
		})
	}
}

func TestStartRejectsMissingMethods(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) { examplev1.RegisterCalculatorServer(s, plain{}) })
	tests := []struct {
		route backend.RouteSpec
		want  string
	}{
		{backend.RouteSpec{Channel: "/service/x", Backend: "p", Type: backend.TypeCall, Method: "example.v1.Calculator/Subtract"}, "method Subtract not found"},
		{backend.RouteSpec{Channel: "/service/x", Backend: "p", Type: backend.TypeCall, Method: "nope.v1.Svc/M"}, "nope.v1.Svc"},
		{backend.RouteSpec{Channel: "/x", Backend: "p", Type: backend.TypeStream, Method: "example.v1.Calculator/Add"}, "not a server-streaming method"},
	}
	for _, tt := range tests {
		r, err := backend.New(backend.Config{Backends: map[string]backend.Spec{"p": spec(addr)}, Routes: []backend.RouteSpec{tt.route}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		err = r.Start(ctx, engine.New(engine.Config{}))
		cancel()
		r.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start with %s = %v; want an error containing %q", tt.route.Method, err, tt.want)
		}
	}
}

func TestNewRejectsBadRoutes(t *testing.T) {
	b := map[string]backend.Spec{"g": spec("127.0.0.1:1"), "h": {URL: "http://127.0.0.1:1/x", Timeout: time.Second, MaxMessageBytes: 1024}}
	tests := []struct {
		name   string
		routes []backend.RouteSpec
		want   string
	}{
		{"duplicate", []backend.RouteSpec{{Channel: "/service/a/*", Backend: "g", Type: "call"}, {Channel: "/service/a/*", Backend: "g", Type: "call"}}, "ambiguous"},
		{"unknown backend", []backend.RouteSpec{{Channel: "/service/a", Backend: "zz", Type: "call"}}, `no backend "zz"`},
		{"call on broadcast", []backend.RouteSpec{{Channel: "/a", Backend: "g", Type: "call"}}, "needs a /service/ channel"},
		{"stream on service", []backend.RouteSpec{{Channel: "/service/a", Backend: "g", Type: "stream"}}, "needs a broadcast channel"},
		{"http stream", []backend.RouteSpec{{Channel: "/a", Backend: "h", Type: "stream"}}, "only serve call routes"},
		{"bad pattern", []backend.RouteSpec{{Channel: "/a/*/b", Backend: "g", Type: "stream"}}, "invalid channel"},
	}
	for _, tt := range tests {
		_, err := backend.New(backend.Config{Backends: b, Routes: tt.routes})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v; want %q", tt.name, err, tt.want)
		}
	}
	// Overlapping patterns of different specificity are fine: the most
	// specific wins.
	if _, err := backend.New(backend.Config{Backends: b, Routes: []backend.RouteSpec{
		{Channel: "/service/**", Backend: "g", Type: "call"}, {Channel: "/service/a/*", Backend: "h", Type: "call"}, {Channel: "/service/a/b", Backend: "g", Type: "call"},
	}}); err != nil {
		t.Errorf("overlapping routes of different specificity: %v", err)
	}
}

func TestMostSpecificRouteWins(t *testing.T) {
	var seen sync.Map
	mk := func(name string) string {
		return serve(t, func(s *grpc.Server) {
			backendv1.RegisterBackendServer(s, &contract{call: func(_ context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
				seen.Store(r.GetChannel(), name)
				return &backendv1.CallResponse{Data: []byte(`"` + name + `"`)}, nil
			}})
		})
	}
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{"deep": spec(mk("deep")), "one": spec(mk("one")), "exact": spec(mk("exact"))},
		Routes: []backend.RouteSpec{
			{Channel: "/service/**", Backend: "deep", Type: "call"},
			{Channel: "/service/a/*", Backend: "one", Type: "call"},
			{Channel: "/service/a/b", Backend: "exact", Type: "call"},
		},
	})
	c, _ := n.client(t, "")
	for ch, want := range map[string]string{"/service/a/b": "exact", "/service/a/c": "one", "/service/a/c/d": "deep", "/service/x": "deep"} {
		c.send(`{"id":"1","channel":"` + ch + `","clientId":"$ID","data":{}}`)
		if r := c.next(); r["data"] != want {
			t.Errorf("call on %s served by %v; want %s", ch, r["data"], want)
		}
	}
}

// tickerBackend streams numbered ticks on the subscribed channel and
// records each Subscribe call.
type tickerBackend struct {
	mu      sync.Mutex
	opened  []*backendv1.SubscribeRequest
	active  atomic.Int32
	breakAt uint64 // break the stream after sending this offset (once)
	resume  bool   // honour resume_after
	broke   atomic.Bool
}

func (b *tickerBackend) serve(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
	b.mu.Lock()
	b.opened = append(b.opened, r)
	b.mu.Unlock()
	b.active.Add(1)
	defer b.active.Add(-1)
	off := uint64(0)
	if b.resume {
		off = r.GetResumeAfter()
	} else if r.GetResumeAfter() > 0 {
		off = r.GetResumeAfter() + 5 // pretend five were lost
	}
	for {
		off++
		data := fmt.Sprintf(`{"n":%d}`, off)
		if err := s.Send(&backendv1.StreamMessage{Data: []byte(data), Offset: off}); err != nil {
			return err
		}
		if off == b.breakAt && b.broke.CompareAndSwap(false, true) {
			return status.Error(codes.Unavailable, "backend restarting")
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (b *tickerBackend) subscriptions() []*backendv1.SubscribeRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*backendv1.SubscribeRequest(nil), b.opened...)
}

func streamNode(t *testing.T, tb *tickerBackend) *node {
	addr := serve(t, func(s *grpc.Server) { backendv1.RegisterBackendServer(s, &contract{subscribe: tb.serve}) })
	return newNode(t, backend.Config{Backends: map[string]backend.Spec{"t": spec(addr)}, Routes: []backend.RouteSpec{{Channel: "/stocks/*", Backend: "t", Type: backend.TypeStream}}})
}

func TestStreamOpensOnFirstAndClosesAfterLastSubscriber(t *testing.T) {
	tb := &tickerBackend{}
	n := streamNode(t, tb)
	a, _ := n.client(t, "")
	b, _ := n.client(t, "")
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
	if ev := a.next(); ev["channel"] != "/stocks/ACME" {
		t.Fatalf("tick = %v", ev)
	}
	b.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`) // idempotent: no second ref
	b.next()
	if got := len(tb.subscriptions()); got != 1 {
		t.Errorf("backend streams opened = %d; want 1 for two subscribers", got)
	}
	a.send(`{"channel":"/meta/unsubscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
	if tb.active.Load() != 1 {
		t.Errorf("stream closed while a subscriber remains")
	}
	b.s.Disconnect() // the last subscriber's session ends
	eventually(t, "backend stream cancelled", func() bool { return tb.active.Load() == 0 && n.r.OpenStreams() == 0 })
	if r := tb.subscriptions()[0]; r.GetChannel() != "/stocks/ACME" || r.GetResumeAfter() != 0 {
		t.Errorf("Subscribe request = %v", r)
	}
}

func TestStreamReopensAndResumes(t *testing.T) {
	for _, resume := range []bool{true, false} {
		t.Run(fmt.Sprint("resume=", resume), func(t *testing.T) {
			tb := &tickerBackend{breakAt: 3, resume: resume}
			n := streamNode(t, tb)
			a, _ := n.client(t, "")
			a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
			var seen []string
			gap := false
			for len(seen) < 5 {
				ev := a.next()
				if ext, _ := ev["ext"].(map[string]any); ext != nil && fmt.Sprint(ext["cometgate"]) == "map[gap:true]" {
					gap = true
					continue
				}
				seen = append(seen, fmt.Sprint(ev["data"]))
			}
			subs := tb.subscriptions()
			if len(subs) != 2 || subs[1].GetResumeAfter() != 3 {
				t.Fatalf("Subscribe calls = %v; want a reopen resuming after offset 3", subs)
			}
			if resume {
				if gap || strings.Join(seen, ",") != "map[n:1],map[n:2],map[n:3],map[n:4],map[n:5]" {
					t.Errorf("resumed stream: gap=%v seen=%v; want continuous without a gap notice", gap, seen)
				}
			} else if !gap {
				t.Errorf("backend skipped offsets but no gap notice was sent; seen %v", seen)
			}
		})
	}
}

func TestStreamNarrowcast(t *testing.T) {
	var target atomic.Value
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{subscribe: func(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
			for i := 0; ; i++ {
				id, _ := target.Load().(string)
				s.Send(&backendv1.StreamMessage{Data: []byte(`"private"`), ClientId: id})
				s.Send(&backendv1.StreamMessage{Data: []byte(`"for alice"`), UserId: "alice"})
				select {
				case <-s.Context().Done():
					return nil
				case <-time.After(20 * time.Millisecond):
				}
			}
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"t": spec(addr)}, Routes: []backend.RouteSpec{{Channel: "/inbox", Backend: "t", Type: backend.TypeStream}}})
	a, _ := n.client(t, "")
	b, _ := n.client(t, "")
	b.s.SetUser("alice")
	target.Store(a.s.ID())
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/inbox"}`)
	got := map[string]bool{}
	for i := 0; i < 4; i++ {
		got[fmt.Sprint(a.next()["data"])] = true
	}
	if !got["private"] || got["for alice"] {
		t.Errorf("a got %v; want only its own narrowcast", got)
	}
	if d := b.next()["data"]; d != "for alice" {
		t.Errorf("alice's session got %v", d)
	}
}

func TestPublishHook(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{publish: func(_ context.Context, r *backendv1.PublishRequest) (*backendv1.PublishResponse, error) {
			if strings.Contains(string(r.GetData()), "spam") {
				return &backendv1.PublishResponse{RejectReason: "spam: no, thanks"}, nil
			}
			return &backendv1.PublishResponse{Data: []byte(`{"text":"clean","moderated":true}`)}, nil
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"m": spec(addr)}, Routes: []backend.RouteSpec{{Channel: "/rooms/*", Backend: "m", Type: backend.TypePublish}}})
	a, _ := n.client(t, "")
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/rooms/lobby"}`)
	r := a.send(`{"id":"1","channel":"/rooms/lobby","clientId":"$ID","data":{"text":"buy spam"}}`)
	if r.Successful || r.Error != "403:spam  no  thanks:publish_denied" {
		t.Errorf("rejected publish reply = %s", r)
	}
	a.none(50 * time.Millisecond)
	r = a.send(`{"id":"2","channel":"/rooms/lobby","clientId":"$ID","data":{"text":"hello"}}`)
	if !r.Successful {
		t.Fatalf("accepted publish reply = %s", r)
	}
	if d := fmt.Sprint(a.next()["data"]); d != "map[moderated:true text:clean]" {
		t.Errorf("delivered data = %s; want the backend's rewrite", d)
	}
}

func TestHandshakeHook(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{handshake: func(_ context.Context, r *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error) {
			var ext struct{ Token string }
			json.Unmarshal(r.GetExt(), &ext)
			switch ext.Token {
			case "good":
				return &backendv1.HandshakeResponse{UserId: "alice", Subscribe: []string{"/alice/**"}, Ext: []byte(`{"welcome":"alice"}`)}, nil
			case "down":
				return nil, status.Error(codes.Unavailable, "auth db down")
			}
			return nil, status.Error(codes.Unauthenticated, "bad token")
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"auth": spec(addr)}, AuthBackend: "auth"})
	_, r := n.client(t, `{"token":"nope"}`)
	if r.Successful || r.Error != "403:bad token:handshake_denied" || r.Advice == nil || r.Advice.Reconnect != "none" || r.ClientID != "" {
		t.Errorf("denied handshake = %s", r)
	}
	_, r = n.client(t, `{"token":"down"}`)
	if r.Successful || !strings.HasPrefix(r.Error, "503:Unavailable:handshake_failed") || r.Advice == nil || r.Advice.Reconnect != "handshake" {
		t.Errorf("handshake with auth backend down = %s", r)
	}
	c, r := n.client(t, `{"token":"good"}`)
	if !r.Successful || !strings.Contains(r.String(), `"welcome":"alice"`) {
		t.Fatalf("accepted handshake = %s", r)
	}
	if c.s.User() != "alice" || len(n.e.UserSessions("alice")) != 1 {
		t.Errorf("user = %q, sessions of alice = %d", c.s.User(), len(n.e.UserSessions("alice")))
	}
	for ch, ok := range map[string]bool{"/alice/inbox": true, "/alice/**": true, "/bob/inbox": false, "/**": false} {
		r := c.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"` + ch + `"}`)
		if r.Successful != ok {
			t.Errorf("subscribe %s = %s; want successful=%v", ch, r, ok)
		}
	}
}

func TestHTTPBackend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		switch {
		case in["fail"] == true:
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"got":%q,"client":%q}`, fmt.Sprint(in["q"]), r.Header.Get(backend.MDClientID))
		}
	}))
	defer srv.Close()
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{"legacy": {URL: srv.URL, Timeout: 2 * time.Second, RetryAttempts: 1, MaxMessageBytes: 1 << 20}},
		Routes:   []backend.RouteSpec{{Channel: "/service/legacy/**", Backend: "legacy", Type: backend.TypeCall}},
	})
	c, _ := n.client(t, "")
	c.send(`{"id":"1","channel":"/service/legacy/search","clientId":"$ID","data":{"q":"go"}}`)
	if r := c.next(); r["successful"] != true || fmt.Sprint(r["data"]) != "map[client:"+c.s.ID()+" got:go]" {
		t.Errorf("HTTP call = %v", r)
	}
	c.send(`{"id":"2","channel":"/service/legacy/search","clientId":"$ID","data":{"fail":true}}`)
	if r := c.next(); r["successful"] != false || r["error"] != "500:http:Internal Server Error" {
		t.Errorf("HTTP 500 call = %v", r)
	}
}

func TestTooManyCallsPerSession(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{call: func(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return &backendv1.CallResponse{}, nil
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": spec(addr)}, Routes: []backend.RouteSpec{{Channel: "/service/x", Backend: "b", Type: "call"}}, MaxCallsPerSession: 2})
	c, _ := n.client(t, "")
	for i := 1; i <= 2; i++ {
		if r := c.send(fmt.Sprintf(`{"id":"%d","channel":"/service/x","clientId":"$ID","data":{}}`, i)); !r.Successful {
			t.Fatalf("call %d refused: %s", i, r)
		}
	}
	if r := c.send(`{"id":"3","channel":"/service/x","clientId":"$ID","data":{}}`); r.Successful || r.Error != "429::too_many_calls" {
		t.Errorf("third concurrent call = %s; want 429::too_many_calls", r)
	}
	close(release)
}

func TestErrorFromStatus(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, "x"), "404:NotFound:x"},
		{status.Error(codes.PermissionDenied, "no"), "403:PermissionDenied:no"},
		{status.Error(codes.Unauthenticated, ""), "401:Unauthenticated:"},
		{status.Error(codes.ResourceExhausted, "slow down"), "429:ResourceExhausted:slow down"},
		{status.Error(codes.InvalidArgument, "a\nb"), "400:InvalidArgument:a b"},
		// Codes whose text may come from gRPC or a backend's internals get
		// a fixed message.
		{status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial tcp 10.1.2.3:9090: connect: connection refused\""), "503:Unavailable:backend unavailable"},
		{status.Error(codes.DeadlineExceeded, "db at 10.1.2.3 timed out"), "504:DeadlineExceeded:deadline exceeded"},
		{status.Error(codes.Internal, "grpc: error unmarshalling response"), "500:Internal:backend error"},
		{status.Error(codes.Unimplemented, "unknown service x.y.Svc"), "501:Unimplemented:not implemented"},
		{errors.New("pq: connection to 10.1.2.3 refused"), "500:Unknown:backend error"},
	}
	for _, tt := range tests {
		if got := backend.ErrorFromStatus(tt.err).Error(); got != tt.want {
			t.Errorf("ErrorFromStatus(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

// restartable is a gRPC backend on a fixed loopback port that a test stops
// and starts again, as a redeployed or crashed backend. register is called
// for each new server, with its instance number (1, 2, ...).
type restartable struct {
	t        *testing.T
	addr     string
	register func(s *grpc.Server, instance int)
	started  int
	srv      *grpc.Server
}

func newRestartable(t *testing.T, register func(*grpc.Server, int)) *restartable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &restartable{t: t, addr: ln.Addr().String(), register: register}
	b.serve(ln)
	t.Cleanup(func() { b.srv.Stop() })
	return b
}

func (b *restartable) serve(ln net.Listener) {
	b.started++
	b.srv = grpc.NewServer()
	b.register(b.srv, b.started)
	go b.srv.Serve(ln)
}

// stop ends the server and every connection and stream to it.
func (b *restartable) stop() { b.srv.Stop() }

// start serves a new instance on the same address.
func (b *restartable) start() {
	b.t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		b.t.Fatalf("listen again on %s: %v", b.addr, err)
	}
	b.serve(ln)
}

// refuse accepts connections on addr and closes them at once, as the port
// of a backend that is down, until the returned function is called. It
// counts the gateway's connection attempts.
func refuse(t *testing.T, addr string) (attempts *atomic.Int32, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	attempts = new(atomic.Int32)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			c.Close()
		}
	}()
	return attempts, func() { ln.Close(); <-done }
}

// instanceBackend registers a contract whose calls answer the instance
// number and whose streams tick {"instance","n"} with offsets resuming
// after resume_after.
func instanceBackend(s *grpc.Server, instance int) {
	backendv1.RegisterBackendServer(s, &contract{
		call: func(context.Context, *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			return &backendv1.CallResponse{Data: []byte(fmt.Sprint(instance))}, nil
		},
		subscribe: func(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
			for off := r.GetResumeAfter() + 1; ; off++ {
				data := fmt.Sprintf(`{"instance":%d,"n":%d}`, instance, off)
				if err := s.Send(&backendv1.StreamMessage{Data: []byte(data), Offset: off}); err != nil {
					return err
				}
				select {
				case <-s.Context().Done():
					return nil
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
	})
}

// TestRecoveryAfterBackendRestart stops a real backend, keeps its port
// refusing connections while the gateway's connection backoff grows to its
// bound, then starts a new backend on the same port: calls and streams
// must work again well before gRPC's default backoff (up to 120s) would
// have retried.
func TestRecoveryAfterBackendRestart(t *testing.T) {
	const recoverWithin = 5 * time.Second // 25 times the test's maxDelay
	b := newRestartable(t, instanceBackend)
	sp := spec(b.addr)
	sp.ReconnectBaseDelay, sp.ReconnectMaxDelay = 20*time.Millisecond, 200*time.Millisecond
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": sp}, Routes: []backend.RouteSpec{
		{Channel: "/service/x", Backend: "b", Type: backend.TypeCall},
		{Channel: "/stocks/*", Backend: "b", Type: backend.TypeStream},
	}})
	caller, _ := n.client(t, "")
	sub, _ := n.client(t, "")
	sub.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/A"}`)
	instanceOf := func(ev map[string]any) float64 {
		d, _ := ev["data"].(map[string]any)
		i, _ := d["instance"].(float64)
		return i
	}
	if ev := sub.next(); instanceOf(ev) != 1 {
		t.Fatalf("first tick = %v", ev)
	}
	call := func() map[string]any {
		caller.send(`{"id":"1","channel":"/service/x","clientId":"$ID","data":{}}`)
		return caller.next()
	}
	if r := call(); r["data"] != 1.0 {
		t.Fatalf("call = %v", r)
	}

	b.stop()
	attempts, stopRefusing := refuse(t, b.addr)
	if r := call(); r["successful"] != false || r["error"] != "503:Unavailable:backend unavailable" {
		t.Errorf("call during the outage = %v; want 503:Unavailable:backend unavailable", r)
	}
	// Seven failed attempts: the backoff (20ms growing 1.6x) has reached
	// its 200ms bound.
	eventually(t, "reconnection attempts", func() bool { return attempts.Load() >= 7 })
	stopRefusing()
	b.start()
	restarted := time.Now()

	var r map[string]any
	within(t, recoverWithin, "calls work again after the backend came back", func() bool {
		r = call()
		return r["successful"] == true
	})
	if r["data"] != 2.0 {
		t.Errorf("call after the restart = %v; want instance 2", r)
	}
	for instanceOf(sub.next()) != 2 {
		if time.Since(restarted) > recoverWithin {
			t.Fatalf("the stream did not reopen within %v of the backend coming back", recoverWithin)
		}
	}
}

// TestStreamEpochAfterRestart restarts a real backend under an open stream.
// The new instance continues the offsets right after the last one the
// gateway received, so only the epoch tells an exact resume (same epoch:
// nothing lost, no notice) from a restarted backend that numbers anew (a
// new epoch: subscribers get a gap notice).
func TestStreamEpochAfterRestart(t *testing.T) {
	for _, tt := range []struct {
		name    string
		epochs  []string // per instance
		wantGap bool
	}{
		{"same epoch", []string{"e1", "e1"}, false},
		{"new epoch", []string{"e1", "e2"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var reqs []*backendv1.SubscribeRequest
			b := newRestartable(t, func(s *grpc.Server, instance int) {
				epoch := tt.epochs[instance-1]
				backendv1.RegisterBackendServer(s, &contract{subscribe: func(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
					mu.Lock()
					reqs = append(reqs, r)
					mu.Unlock()
					for off := r.GetResumeAfter() + 1; ; off++ {
						data := fmt.Sprintf(`{"instance":%d,"n":%d}`, instance, off)
						if err := s.Send(&backendv1.StreamMessage{Data: []byte(data), Offset: off, Epoch: epoch}); err != nil {
							return err
						}
						select {
						case <-s.Context().Done():
							return nil
						case <-time.After(10 * time.Millisecond):
						}
					}
				}})
			})
			n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": spec(b.addr)}, Routes: []backend.RouteSpec{{Channel: "/stocks/*", Backend: "b", Type: backend.TypeStream}}})
			c, _ := n.client(t, "")
			c.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/A"}`)
			type tick struct{ Instance, N int }
			var ticks []tick
			gap := false
			read := func() {
				ev := c.next()
				if ext, _ := ev["ext"].(map[string]any); ext != nil && fmt.Sprint(ext["cometgate"]) == "map[gap:true]" {
					gap = true
					return
				}
				raw, _ := json.Marshal(ev["data"])
				var tk tick
				if err := json.Unmarshal(raw, &tk); err != nil {
					t.Fatalf("event %v: %v", ev, err)
				}
				ticks = append(ticks, tk)
			}
			for len(ticks) < 3 {
				read()
			}
			b.stop()
			b.start()
			for ticks[len(ticks)-1].Instance != 2 {
				read()
			}
			if gap != tt.wantGap {
				t.Errorf("gap notice = %v; want %v (ticks %v)", gap, tt.wantGap, ticks)
			}
			for i := 1; i < len(ticks); i++ {
				if ticks[i].N != ticks[i-1].N+1 {
					t.Errorf("ticks %v are not continuous", ticks)
					break
				}
			}
			mu.Lock()
			last := reqs[len(reqs)-1]
			mu.Unlock()
			if last.GetResumeEpoch() != "e1" || last.GetResumeAfter() == 0 {
				t.Errorf("reopening Subscribe = %v; want resume_after and resume_epoch e1", last)
			}
		})
	}
}

// records is a slog handler that keeps what is logged.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r.Clone())
	return nil
}

// find returns the records with message msg, each as "LEVEL key=value...".
func (h *records) find(msg string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.got {
		if r.Message != msg {
			continue
		}
		line := r.Level.String()
		r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
		out = append(out, line)
	}
	return out
}

// TestUnavailableBackendHidesDetail calls a gRPC and an HTTP backend that
// are down: clients get a short error without the address, the log gets
// the detail, as one warning per backend and then debug lines.
func TestUnavailableBackendHidesDetail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more
	_, port, _ := net.SplitHostPort(dead)
	log := &records{}
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{
			"g": spec(dead),
			"h": {URL: "http://" + dead + "/x", Timeout: 2 * time.Second, RetryAttempts: 1, MaxMessageBytes: 1 << 20},
		},
		Routes: []backend.RouteSpec{
			{Channel: "/service/g", Backend: "g", Type: backend.TypeCall},
			{Channel: "/service/h", Backend: "h", Type: backend.TypeCall},
		},
		Logger: slog.New(log),
	})
	c, _ := n.client(t, "")
	for _, tt := range []struct{ channel, want, data string }{
		{"/service/g", "503:Unavailable:backend unavailable", "map[code:Unavailable grpcCode:14 message:backend unavailable]"},
		{"/service/h", "502:http:backend unavailable", "map[message:backend unavailable status:502]"},
	} {
		for i := 0; i < 2; i++ {
			c.send(`{"id":"1","channel":"` + tt.channel + `","clientId":"$ID","data":{}}`)
			r := c.next()
			if r["error"] != tt.want || fmt.Sprint(r["data"]) != tt.data {
				t.Errorf("call to %s = %v; want error %q and data %s", tt.channel, r, tt.want, tt.data)
			}
			if raw, _ := json.Marshal(r); strings.Contains(string(raw), port) {
				t.Errorf("reply %s shows the backend's address", raw)
			}
		}
	}
	lines := log.find("remote call failed")
	for _, b := range []string{"g", "h"} {
		var warn, debug int
		for _, l := range lines {
			if !strings.Contains(l, " backend="+b+" ") {
				continue
			}
			if !strings.Contains(l, port) {
				t.Errorf("log line %q lacks the detail", l)
			}
			switch {
			case strings.HasPrefix(l, "WARN"):
				warn++
			case strings.HasPrefix(l, "DEBUG"):
				debug++
			}
		}
		if warn != 1 || debug != 1 {
			t.Errorf("backend %s: %d warnings and %d debug lines; want one of each, in %q", b, warn, debug, lines)
		}
	}
}

// TestUnservedServiceChannel publishes to /service/ channels: those a call
// route or an engine handler serves are acknowledged and answered; any
// other gets 404::service_unknown at once instead of an acknowledgement
// followed by nothing.
func TestUnservedServiceChannel(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{call: func(_ context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
			return &backendv1.CallResponse{Data: []byte(`"routed"`)}, nil
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"b": spec(addr)}, Routes: []backend.RouteSpec{
		{Channel: "/service/rooms/**", Backend: "b", Type: backend.TypeCall},
		{Channel: "/service/rooms/a", Backend: "b", Type: backend.TypeCall},
	}})
	if err := n.e.HandlePublish("/service/echo", func(_ context.Context, s *engine.Session, m *bayeux.Message) error {
		s.Deliver(&bayeux.Message{Channel: m.Channel, ID: m.ID, Reply: true, Successful: true, Data: []byte(`"handled"`)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, _ := n.client(t, "")
	for _, tt := range []struct{ channel, want string }{
		{"/service/rooms/join", "routed"},
		{"/service/rooms/a", "routed"},
		{"/service/rooms/a/", "routed"},
		{"/service/echo", "handled"},
		{"/service/nothing", ""},
		{"/service/room", ""},
	} {
		r := c.send(`{"id":"1","channel":"` + tt.channel + `","clientId":"$ID","data":{}}`)
		if tt.want == "" {
			if r.Successful || r.Error != "404::service_unknown" {
				t.Errorf("publish to %s = %s; want 404::service_unknown", tt.channel, r)
			}
			continue
		}
		if !r.Successful {
			t.Errorf("publish to %s = %s; want acknowledged", tt.channel, r)
			continue
		}
		if a := c.next(); a["data"] != tt.want {
			t.Errorf("answer on %s = %v; want %q", tt.channel, a, tt.want)
		}
	}
	c.none(50 * time.Millisecond) // each call was answered once
	if r := c.send(`{"id":"2","channel":"/not/a/service","clientId":"$ID","data":{}}`); !r.Successful {
		t.Errorf("broadcast publish without a route = %s; want successful", r)
	}
}
