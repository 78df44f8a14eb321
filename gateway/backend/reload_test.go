package backend_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/backend"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
)

// namedBackend serves calls answering {"from":name} (after hold, if not
// nil, is closed) and streams ticking {"from":name,"n":...}.
func namedBackend(t *testing.T, name string, hold chan struct{}, active *int32Counter) string {
	return serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{
			call: func(ctx context.Context, _ *backendv1.CallRequest) (*backendv1.CallResponse, error) {
				if hold != nil {
					select {
					case <-hold:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return &backendv1.CallResponse{Data: []byte(`{"from":"` + name + `"}`)}, nil
			},
			subscribe: func(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
				active.add(1)
				defer active.add(-1)
				for n := 1; ; n++ {
					if err := s.Send(&backendv1.StreamMessage{Data: []byte(fmt.Sprintf(`{"from":%q,"n":%d}`, name, n))}); err != nil {
						return err
					}
					select {
					case <-s.Context().Done():
						return nil
					case <-waitTick():
					}
				}
			},
		})
	})
}

func reload(t *testing.T, n *node, cfg backend.Config) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	changes, err := n.r.Reload(ctx, cfg)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	return changes
}

// nextFrom waits for the next event of c on channel ch and returns its
// data's "from".
func (c *client) nextFrom(ch string) string {
	c.t.Helper()
	for {
		ev := c.next()
		if ev["channel"] != ch {
			continue
		}
		data, _ := ev["data"].(map[string]any)
		from, _ := data["from"].(string)
		return from
	}
}

// Routes and backends change under running calls and streams: the call in
// flight on the removed backend finishes there, new calls and the stream
// go to the new backend, an added route serves at once, and a removed call
// route answers service_unknown.
func TestReloadRoutesWhileCallsAndStreamsRun(t *testing.T) {
	hold := make(chan struct{})
	var activeA, activeB int32Counter
	addrA := namedBackend(t, "a", hold, &activeA)
	addrB := namedBackend(t, "b", nil, &activeB)
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{"a": spec(addrA)},
		Routes: []backend.RouteSpec{
			{Channel: "/service/x", Backend: "a", Type: backend.TypeCall},
			{Channel: "/stocks/*", Backend: "a", Type: backend.TypeStream},
		},
	})
	c, _ := n.client(t, "")
	c.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
	if from := c.nextFrom("/stocks/ACME"); from != "a" {
		t.Fatalf("tick from %q; want a", from)
	}
	if r := c.send(`{"id":"inflight","channel":"/service/x","clientId":"$ID","data":{}}`); !r.Successful {
		t.Fatalf("call acknowledged as %v", r)
	}

	changes := reload(t, n, backend.Config{
		Backends: map[string]backend.Spec{"b": spec(addrB)},
		Routes: []backend.RouteSpec{
			{Channel: "/service/x", Backend: "b", Type: backend.TypeCall},
			{Channel: "/service/y", Backend: "b", Type: backend.TypeCall},
			{Channel: "/stocks/*", Backend: "b", Type: backend.TypeStream},
		},
	})
	want := []string{"backend a removed", "backend b added", "route call /service/x changed", "route call /service/y added", "route stream /stocks/* changed"}
	if !slices.Equal(changes, want) {
		t.Errorf("Reload changes = %q; want %q", changes, want)
	}
	close(hold) // the call in flight on a answers from a
	for {
		ev := c.next()
		if ev["id"] == "inflight" {
			if ev["successful"] != true || !strings.Contains(fmt.Sprint(ev["data"]), "from:a") {
				t.Fatalf("call in flight across the reload answered %v; want success from a", ev)
			}
			break
		}
	}
	eventually(t, "stream moved to b", func() bool { return activeA.load() == 0 && activeB.load() == 1 })
	if r := c.send(`{"id":"y","channel":"/service/y","clientId":"$ID","data":{}}`); !r.Successful {
		t.Fatalf("call on the added route acknowledged as %v", r)
	}
	for {
		ev := c.next()
		if ev["id"] == "y" {
			if !strings.Contains(fmt.Sprint(ev["data"]), "from:b") {
				t.Fatalf("call on the added route answered %v; want from b", ev)
			}
			break
		}
	}
	if n.r.OpenStreams() != 1 {
		t.Errorf("OpenStreams() = %d; want 1", n.r.OpenStreams())
	}

	changes = reload(t, n, backend.Config{
		Backends: map[string]backend.Spec{"b": spec(addrB)},
		Routes:   []backend.RouteSpec{{Channel: "/service/x", Backend: "b", Type: backend.TypeCall}},
	})
	want = []string{"route call /service/y removed", "route stream /stocks/* removed"}
	if !slices.Equal(changes, want) {
		t.Errorf("Reload changes = %q; want %q", changes, want)
	}
	if r := c.send(`{"id":"y2","channel":"/service/y","clientId":"$ID","data":{}}`); r.Successful || !strings.Contains(r.Error, "service_unknown") {
		t.Errorf("call on a removed route = %v; want 404::service_unknown", r)
	}
	eventually(t, "stream of the removed route cancelled", func() bool { return activeB.load() == 0 && n.r.OpenStreams() == 0 })
	if got := reload(t, n, backend.Config{
		Backends: map[string]backend.Spec{"b": spec(addrB)},
		Routes:   []backend.RouteSpec{{Channel: "/service/x", Backend: "b", Type: backend.TypeCall}},
	}); len(got) != 0 {
		t.Errorf("Reload of the same config changes = %q; want none", got)
	}
}

// A stream route added by a reload feeds the channels already subscribed.
func TestReloadAddedStreamFeedsSubscribedChannels(t *testing.T) {
	var active int32Counter
	addr := namedBackend(t, "a", nil, &active)
	cfg := backend.Config{Backends: map[string]backend.Spec{"a": spec(addr)}}
	n := newNode(t, cfg)
	c, _ := n.client(t, "")
	c.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/news/today"}`)
	cfg.Routes = []backend.RouteSpec{{Channel: "/news/*", Backend: "a", Type: backend.TypeStream}}
	reload(t, n, cfg)
	if from := c.nextFrom("/news/today"); from != "a" {
		t.Fatalf("tick from %q; want a", from)
	}
	c.send(`{"channel":"/meta/unsubscribe","clientId":"$ID","subscription":"/news/today"}`)
	eventually(t, "stream closed after the last subscriber", func() bool { return n.r.OpenStreams() == 0 && active.load() == 0 })
}

// A reload that cannot be applied changes nothing.
func TestReloadRefusedKeepsRouting(t *testing.T) {
	var active int32Counter
	addr := namedBackend(t, "a", nil, &active)
	cfg := backend.Config{
		Backends: map[string]backend.Spec{"a": spec(addr)},
		Routes:   []backend.RouteSpec{{Channel: "/service/x", Backend: "a", Type: backend.TypeCall}},
	}
	n := newNode(t, cfg)
	for name, bad := range map[string]backend.Config{
		"unknown backend": {Backends: cfg.Backends, Routes: []backend.RouteSpec{{Channel: "/service/z", Backend: "nope", Type: backend.TypeCall}}},
		"missing method":  {Backends: cfg.Backends, Routes: []backend.RouteSpec{{Channel: "/service/z", Backend: "a", Type: backend.TypeCall, Method: "no.Such/Method"}}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		if _, err := n.r.Reload(ctx, bad); err == nil {
			t.Errorf("Reload(%s) = nil error; want an error", name)
		}
		cancel()
	}
	c, _ := n.client(t, "")
	c.send(`{"id":"1","channel":"/service/x","clientId":"$ID","data":{}}`)
	for {
		if ev := c.next(); ev["id"] == "1" {
			if ev["successful"] != true {
				t.Fatalf("call after refused reloads = %v", ev)
			}
			break
		}
	}
}

// A required backend is reported unreachable while it is down.
func TestRequiredBackendUnreachable(t *testing.T) {
	b := newRestartable(t, instanceBackend)
	s := spec(b.addr)
	s.Required = true
	s.ReconnectMaxDelay = 100 * time.Millisecond
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"req": s, "opt": spec("127.0.0.1:1")}})
	eventually(t, "required backend ready", func() bool { return len(n.r.Unreachable()) == 0 })
	b.stop()
	eventually(t, "required backend reported", func() bool { return slices.Equal(n.r.Unreachable(), []string{"req"}) })
	b.start()
	eventually(t, "required backend ready again", func() bool { return len(n.r.Unreachable()) == 0 })
}

// int32Counter counts a backend's open streams.
type int32Counter struct{ v atomic.Int32 }

func (c *int32Counter) add(d int32) { c.v.Add(d) }
func (c *int32Counter) load() int32 { return c.v.Load() }

// waitTick paces the test streams.
func waitTick() <-chan time.Time { return time.After(10 * time.Millisecond) }
