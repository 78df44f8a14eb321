package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
)

// wsSubscriber handshakes over a websocket to s and subscribes to subs.
func wsSubscriber(t *testing.T, s *gt.Server, subs ...string) *gt.WSClient {
	t.Helper()
	ctx := gt.Context(t)
	w, _, err := gt.DialWebSocket(ctx, s.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	r, _, err := w.Call(5*time.Second, "/meta/handshake", gt.Message{"version": "1.0", "supportedConnectionTypes": []string{"websocket"}})
	if err != nil || !r.Successful() {
		t.Fatalf("handshake: %v %v", r, err)
	}
	w.ClientID = r.Str("clientId")
	if r, _, err := w.Call(5*time.Second, "/meta/connect", gt.Message{"connectionType": "websocket", "advice": gt.Message{"timeout": 0}}); err != nil || !r.Successful() {
		t.Fatalf("connect: %v %v", r, err)
	}
	for _, ch := range subs {
		if r, _, err := w.Call(5*time.Second, "/meta/subscribe", gt.Message{"subscription": ch}); err != nil || !r.Successful() {
			t.Fatalf("subscribe %s: %v %v", ch, r, err)
		}
	}
	return w
}

// TestClusterBroadcastExactlyOnceInOrder: a subscriber on each of three
// nodes, subscribed to a channel and to two patterns matching it, gets
// every message published on any node exactly once, in publish order per
// publisher; /service/ messages never cross.
func TestClusterBroadcastExactlyOnceInOrder(t *testing.T) {
	nats := gt.StartNATS(t)
	nodes := gt.NewCluster(t, nats, 3, func(i int, c *config.Config) { *c.Demo.Enabled = false })
	var subs []*gt.WSClient
	for _, n := range nodes {
		subs = append(subs, wsSubscriber(t, n, "/room/a", "/room/*", "/**"))
	}
	ctx := gt.Context(t)
	const per = 20
	for i, n := range nodes {
		c := n.Client()
		if _, _, err := c.Handshake(ctx, nil); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < per; k++ {
			r, _, err := c.Publish(ctx, "/room/a", gt.Message{"from": i, "k": k}, nil)
			if err != nil || !r.Successful() {
				t.Fatalf("publish: %v %v", r, err)
			}
		}
	}
	for si, w := range subs {
		next := make([]int, len(nodes))
		got := 0
		for got < per*len(nodes) {
			msgs, err := w.Read(10 * time.Second)
			if err != nil {
				t.Fatalf("subscriber %d after %d messages: %v", si, got, err)
			}
			for _, m := range msgs {
				if m.Channel() != "/room/a" {
					continue
				}
				d := m.Obj("data")
				from, k := int(d["from"].(float64)), int(d["k"].(float64))
				if k != next[from] {
					t.Fatalf("subscriber %d: from node %d got k=%d, want %d (duplicate or out of order)", si, from, k, next[from])
				}
				next[from]++
				got++
			}
		}
	}
	// A last message from node 0: the next thing every subscriber gets,
	// so nothing was delivered twice after the counted ones.
	c := nodes[0].Client()
	if _, _, err := c.Handshake(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r, _, err := c.Publish(ctx, "/room/a", "end", nil); err != nil || !r.Successful() {
		t.Fatalf("publish: %v %v", r, err)
	}
	for si, w := range subs {
		frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/room/a" })
		if err != nil {
			t.Fatalf("subscriber %d: %v", si, err)
		}
		last := frames[len(frames)-1]
		for _, m := range last {
			if m.Channel() == "/room/a" && fmt.Sprint(m["data"]) != "end" {
				t.Fatalf("subscriber %d: got %v after all messages, want the end marker", si, m)
			}
		}
	}
}
