package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/nats-io/nats.go"
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

// readData reads w until a message on channel arrives and returns its data
// as text.
func readData(t *testing.T, w *gt.WSClient, channel string) string {
	t.Helper()
	frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == channel })
	if err != nil {
		t.Fatalf("waiting for %s: %v", channel, err)
	}
	for _, m := range frames[len(frames)-1] {
		if m.Channel() == channel {
			return fmt.Sprint(m["data"])
		}
	}
	panic("unreachable")
}

// publishVia handshakes a long-polling client on s and publishes data on
// channel, failing the test if the publish is not acknowledged.
func publishVia(t *testing.T, s *gt.Server, channel string, data any) {
	t.Helper()
	ctx := gt.Context(t)
	c := s.Client()
	if _, _, err := c.Handshake(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r, _, err := c.Publish(ctx, channel, data, nil); err != nil || !r.Successful() {
		t.Fatalf("publish on %s: %v %v", channel, r, err)
	}
}

// TestClusterSubjectsAndInterest watches NATS itself: a node subscribes
// once per channel or pattern its sessions use, whatever their number,
// and drops the subscription with the last of them; Bayeux patterns map
// to NATS wildcards, reserved characters are escaped; /service/ and /meta/
// messages never appear on NATS.
func TestClusterSubjectsAndInterest(t *testing.T) {
	ns := gt.StartNATS(t)
	nodes := gt.NewCluster(t, ns, 2, nil)
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	seen := make(chan string, 100)
	if _, err := nc.Subscribe("cometgate.b.>", func(m *nats.Msg) { seen <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a1 := wsSubscriber(t, nodes[1], "/odd.name/x y", "/odd.name/*")
	a2 := wsSubscriber(t, nodes[1], "/odd.name/x y")
	if got := nodes[1].Node().Stats().Subscriptions.Load(); got != 2 {
		t.Fatalf("node1 holds %d NATS subscriptions for 2 sessions on 2 channels, want 2", got)
	}
	// /service/ messages (the demo's echo) stay on their node.
	publishVia(t, nodes[0], "/service/echo", "not broadcast")
	publishVia(t, nodes[0], "/odd.name/x y", "hello")
	for i, w := range []*gt.WSClient{a1, a2} {
		if got := readData(t, w, "/odd.name/x y"); got != "hello" {
			t.Fatalf("subscriber %d got %q", i, got)
		}
	}
	if s := <-seen; s != "cometgate.b.odd_2Ename.x_20y" {
		t.Fatalf("first subject on NATS %q, want the escaped channel (no /service/ message before it)", s)
	}
	// The wildcard subscriber gets the message once although node1 holds
	// both a channel and a pattern subscription that match it.
	publishVia(t, nodes[0], "/odd.name/x y", "second")
	if got := readData(t, a1, "/odd.name/x y"); got != "second" {
		t.Fatalf("got %q, want second (a duplicate of hello?)", got)
	}
	// The last subscriber of each leaves: node1 unsubscribes from NATS.
	if r, _, err := a1.Call(5*time.Second, "/meta/unsubscribe", gt.Message{"subscription": "/odd.name/*"}); err != nil || !r.Successful() {
		t.Fatalf("unsubscribe: %v %v", r, err)
	}
	gt.Eventually(t, 10*time.Second, func() error {
		if got := nodes[1].Node().Stats().Subscriptions.Load(); got != 1 {
			return fmt.Errorf("node1 holds %d NATS subscriptions, want 1", got)
		}
		return nil
	})
	for _, w := range []*gt.WSClient{a1, a2} {
		if r, _, err := w.Call(5*time.Second, "/meta/disconnect", nil); err != nil || !r.Successful() {
			t.Fatalf("disconnect: %v %v", r, err)
		}
	}
	gt.Eventually(t, 10*time.Second, func() error {
		if got := nodes[1].Node().Stats().Subscriptions.Load(); got != 0 {
			return fmt.Errorf("node1 still holds %d NATS subscriptions", got)
		}
		return nil
	})
}

// TestClusterSurvivesNATSRestart: with NATS restarted mid-run, each node
// keeps serving its local clients, reconnects, resubscribes, and
// broadcasts cross again; the outage is visible in the metrics.
func TestClusterSurvivesNATSRestart(t *testing.T) {
	ns := gt.StartNATS(t)
	nodes := gt.NewCluster(t, ns, 2, func(_ int, c *config.Config) { c.API.Tokens = []string{metricsToken} })
	sub := wsSubscriber(t, nodes[1], "/news")
	local := wsSubscriber(t, nodes[0], "/news")
	publishVia(t, nodes[0], "/news", "before")
	if got := readData(t, sub, "/news"); got != "before" {
		t.Fatalf("got %q", got)
	}
	readData(t, local, "/news")

	ns.Stop()
	gt.Eventually(t, 10*time.Second, func() error {
		if nodes[0].Node().Connected() || nodes[1].Node().Connected() {
			return fmt.Errorf("a node still believes it is connected")
		}
		return nil
	})
	// Local clients are served meanwhile.
	publishVia(t, nodes[0], "/news", "during")
	if got := readData(t, local, "/news"); got != "during" {
		t.Fatalf("local subscriber got %q during the outage", got)
	}
	ns.Restart()
	gt.Eventually(t, 20*time.Second, func() error {
		if !nodes[0].Node().Connected() || !nodes[1].Node().Connected() {
			return fmt.Errorf("not reconnected yet")
		}
		return nil
	})
	// The reconnect buffer may carry "during" to node1 after all; what
	// matters is that what is published now arrives.
	publishVia(t, nodes[0], "/news", "after")
	gt.Eventually(t, 10*time.Second, func() error {
		if got := readData(t, sub, "/news"); got != "after" {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
	ctx := gt.Context(t)
	series, _, err := scrape(ctx, "http://"+nodes[1].APIAddr().String()+"/metrics", metricsToken)
	if err != nil {
		t.Fatal(err)
	}
	if series[`cometgate_cluster_connection_events_total{event="reconnected"}`] < 1 || series["cometgate_cluster_connected"] != 1 {
		t.Fatalf("metrics do not show the reconnection: %v", series)
	}
	if series[`cometgate_cluster_broadcasts_total{direction="received"}`] < 2 {
		t.Fatalf("node1 received %v broadcasts, want >= 2", series[`cometgate_cluster_broadcasts_total{direction="received"}`])
	}
}

// TestClusterDropsMalformedBroadcasts: bytes on a broadcast subject that
// are not a well-formed frame of JSON in UTF-8 reach no client and are
// counted; the subscriber gets the next good message.
func TestClusterDropsMalformedBroadcasts(t *testing.T) {
	ns := gt.StartNATS(t)
	nodes := gt.NewCluster(t, ns, 1, nil)
	sub := wsSubscriber(t, nodes[0], "/feed")
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, junk := range [][]byte{
		nil, []byte("x"), {1, 5, '/', 'f'},
		append([]byte{1, 5}, "/feed\x00\"\xff\xfe\""...),       // data not UTF-8
		append([]byte{1, 5}, "/feed\x02{]1"...),                // ext not JSON
		append([]byte{1, 7}, "/meta/x\x00{}"...),               // not a broadcast channel
		append([]byte{1, 6}, "/feed/\x00{}"...),                // not a valid channel
		append([]byte{1, 5}, "/feed\x00{\"a\":1}{\"b\":2}"...), // two values
	} {
		if err := nc.Publish("cometgate.b.feed", junk); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, 10*time.Second, func() error {
		if got := nodes[0].Node().Stats().Invalid.Load(); got != 8 {
			return fmt.Errorf("%d malformed broadcasts counted, want 8", got)
		}
		return nil
	})
	publishVia(t, gt.NewCluster(t, ns, 1, nil)[0], "/feed", "good")
	if got := readData(t, sub, "/feed"); got != "good" {
		t.Fatalf("first message to reach the subscriber: %q, want good", got)
	}
}
