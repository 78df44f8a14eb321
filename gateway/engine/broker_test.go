package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// recBroker records what the engine tells its broker.
type recBroker struct {
	mu        sync.Mutex
	interest  []string
	published []string
	syncs     int
}

func (r *recBroker) Interest(name string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.interest = append(r.interest, fmt.Sprintf("%s:%v", name, on))
}

func (r *recBroker) Sync(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	return nil
}

func (r *recBroker) Publish(channel string, data, ext json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, channel+" "+string(data))
	return nil
}

func (r *recBroker) take() (interest, published []string, syncs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	interest, published, syncs = r.interest, r.published, r.syncs
	r.interest, r.published, r.syncs = nil, nil, 0
	return
}

// TestBrokerSeam: the broker hears of a channel's first local subscriber
// and of its last, a subscribe waits for it (Sync) only when interest
// changed, every broadcast that enters on this node is handed to it once
// (a client's, the API's, a server component's) but not a backend
// stream's (PublishLocal) nor a /service/ message, and session ids carry
// the node's prefix.
func TestBrokerSeam(t *testing.T) {
	br := &recBroker{}
	e := engine.New(engine.Config{}, engine.WithBroker(br), engine.WithIDPrefix("node0001"))
	e.HandlePublish("/service/x", func(context.Context, *engine.Session, *bayeux.Message) error { return nil })
	a := handshake(t, e, lpClient("a"), "")
	b := handshake(t, e, lpClient("b"), "")
	if !strings.HasPrefix(a.ID(), "node0001") || len(a.ID()) != len("node0001")+32 {
		t.Fatalf("session id %q does not start with the node's prefix", a.ID())
	}
	sub := func(s *engine.Session, meta, ch string) {
		t.Helper()
		r, bt := send(t, e, lpClient(s.Browser()), `[{"channel":"`+meta+`","clientId":"`+s.ID()+`","subscription":"`+ch+`"}]`)
		bt.End()
		if !r[0].Successful {
			t.Fatalf("%s %s: %s", meta, ch, r[0])
		}
	}
	sub(a, "/meta/subscribe", "/t/*")
	sub(b, "/meta/subscribe", "/t/*")
	sub(b, "/meta/subscribe", "/service/x")
	in, _, syncs := br.take()
	if fmt.Sprint(in) != "[/t/*:true]" || syncs != 1 {
		t.Fatalf("after two subscribers of /t/*: interest %v, syncs %d; want [/t/*:true] and 1", in, syncs)
	}
	sub(a, "/meta/unsubscribe", "/t/*")
	b.Disconnect()
	if in, _, _ := br.take(); fmt.Sprint(in) != "[/t/*:false]" {
		t.Fatalf("after both left: interest %v, want [/t/*:false]", in)
	}

	r, bt := send(t, e, lpClient("a"), `[{"channel":"/t/1","clientId":"`+a.ID()+`","data":1},{"channel":"/service/x","clientId":"`+a.ID()+`","data":2}]`)
	bt.End()
	if !r[0].Successful || !r[1].Successful {
		t.Fatalf("publishes: %v", r)
	}
	e.Publish("/t/2", json.RawMessage(`3`), nil)
	e.PublishLocal("/t/3", json.RawMessage(`4`), nil)
	e.PublishChecked(context.Background(), &bayeux.Message{Channel: "/t/4", Data: json.RawMessage(`5`)})
	if _, pub, _ := br.take(); fmt.Sprint(pub) != "[/t/1 1 /t/2 3 /t/4 5]" {
		t.Fatalf("handed to the broker: %v; want the client's, the component's and the API's broadcasts", pub)
	}
}

// TestReceiveOncePerSession: a message from another node arrives once
// through each local subscription that matches it; each session gets it
// through the first of its own, so once, and invalid input reaches nobody.
func TestReceiveOncePerSession(t *testing.T) {
	e := engine.New(engine.Config{}, engine.WithBroker(&recBroker{}))
	subs := map[string][]string{"x": {"/a/**", "/a/b/*", "/a/b/c"}, "y": {"/a/b/c"}, "z": {"/a/b/*", "/a/**"}}
	sessions := map[string]*engine.Session{}
	for name, chans := range subs {
		s := handshake(t, e, lpClient(name), "")
		sessions[name] = s
		for _, ch := range chans {
			r, bt := send(t, e, lpClient(name), `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"`+ch+`"}]`)
			bt.End()
			if !r[0].Successful {
				t.Fatal(r[0])
			}
		}
	}
	// A node with these sessions holds three NATS subscriptions; the
	// message arrives through each.
	for _, via := range []string{"/a/b/c", "/a/**", "/a/b/*"} {
		if _, err := e.Receive(via, "/a/b/c", json.RawMessage(`{"v":1}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range sessions {
		if got := events(s); len(got) != 1 {
			t.Errorf("session %s got %d copies: %v", name, len(got), got)
		}
	}
	for _, bad := range []struct {
		name, data, ext string
	}{{"/a/b/c", `{"v":`, ""}, {"/a/b/c", `"` + "\xff" + `"`, ""}, {"/a/b/c", `1`, `[`}, {"/meta/connect", `1`, ""}, {"/service/x", `1`, ""}, {"/a/b/*", `1`, ""}} {
		var ext json.RawMessage
		if bad.ext != "" {
			ext = json.RawMessage(bad.ext)
		}
		if _, err := e.Receive("/a/**", bad.name, json.RawMessage(bad.data), ext); err == nil {
			t.Errorf("Receive(%q, %q, %q) accepted", bad.name, bad.data, bad.ext)
		}
	}
	for name, s := range sessions {
		if got := events(s); len(got) != 0 {
			t.Errorf("session %s got %v from invalid input", name, got)
		}
	}
}

// BenchmarkReceive_1000Subs is BenchmarkFanout_1000Subs for a message
// from another node: allocs/op stay per message, none per subscriber.
func BenchmarkReceive_1000Subs(b *testing.B) {
	e := engine.New(engine.Config{MaxQueue: 1 << 20, MaxQueueBytes: 1 << 30}, engine.WithBroker(&recBroker{}))
	sessions := benchSubscribers(b, e, 1000, "/bench/room")
	data := json.RawMessage(`{"user":"alice","chat":"hello, world","ts":1732512345678}`)
	drain := make([][]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		e.Receive("/bench/room", "/bench/room", data, nil)
		for _, s := range sessions {
			drain, _ = s.Pull(drain[:0], 0, 1<<20)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/delivery")
}
