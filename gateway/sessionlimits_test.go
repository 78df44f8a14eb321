package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

// A client's advice.interval is honoured up to what the server lets a
// session go without a connect (the larger of interval and maxInterval),
// as its advice.timeout is honoured up to the server's timeout: a huge
// interval no longer keeps a session alive for weeks.
func TestConnectClientIntervalCapped(t *testing.T) {
	t.Parallel()
	const maxInterval = 500 * time.Millisecond
	srv := newServer(t, longT, func(c *config.Config) {
		c.Bayeux.MaxInterval = config.Duration(maxInterval)
		c.Bayeux.SweepPeriod = config.Duration(50 * time.Millisecond)
	})
	tests := []struct {
		name     string
		interval any
		want     float64 // advice.interval in the reply
	}{
		{name: "huge", interval: 1e12, want: 500},
		{name: "beyond int64", interval: json.RawMessage("1e300"), want: 500},
		{name: "just over", interval: 501, want: 500},
		{name: "shorter, fractional", interval: 300.9, want: 300},
		{name: "negative is ignored", interval: -5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			c.handshake(nil)
			r, _ := c.connect(M{"advice": M{"timeout": 0, "interval": tt.interval}})
			wantSuccess(t, r)
			if got := r.Obj("advice")["interval"]; got != tt.want {
				t.Errorf("advice.interval = %v; want %v", got, tt.want)
			}
			// Without another connect the session expires within
			// interval + maxInterval of the reply (plus a sweep).
			id := c.ClientID
			gatewaytest.Eventually(t, 10*time.Second, func() error {
				if srv.Engine().Session(id) != nil {
					return fmt.Errorf("session %s still alive", id)
				}
				return nil
			})
		})
	}
}

// limitsServer runs a gateway allowing 5 subscriptions per session and 3
// channels per subscribe message.
func limitsServer(t *testing.T) *gatewaytest.Server {
	return newServer(t, longT, func(c *config.Config) {
		c.Limits.MaxSubscriptionsPerSession = 5
		c.Limits.MaxChannelsPerSubscribe = 3
	})
}

// A subscribe message naming more channels than
// limits.maxChannelsPerSubscribe, or one that would take its session past
// limits.maxSubscriptionsPerSession, is refused whole: nothing of it is
// subscribed, and the refusal is counted.
func TestSubscribeLimits(t *testing.T) {
	t.Parallel()
	srv := limitsServer(t)
	c := newClient(t, srv).connected()
	session := srv.Engine().Session(c.ClientID)
	stats := srv.Engine().Stats()
	before := stats.SubscribeLimited.Load()

	r := c.subscribe([]string{"/a/1", "/a/2", "/a/3", "/a/4"})
	wantFailure(t, r, "403:per_message:subscription_limit")
	if got := session.Subscriptions(); len(got) != 0 {
		t.Fatalf("after a refused subscribe of 4 channels, subscribed to %v; want none", got)
	}

	// Within both limits, repeats and service channels do not count.
	wantSuccess(t, c.subscribe([]string{"/a/1", "/a/2", "/a/1"}))
	wantSuccess(t, c.subscribe([]string{"/a/2", "/a/3", "/service/x"}))
	if got := len(session.Subscriptions()); got != 3 {
		t.Fatalf("%d subscriptions; want 3: %v", got, session.Subscriptions())
	}

	// 3 + 3 new > 5: refused whole.
	r = c.subscribe([]string{"/b/1", "/b/2", "/b/3"})
	wantFailure(t, r, "403:per_session:subscription_limit")
	if got := len(session.Subscriptions()); got != 3 {
		t.Fatalf("after a refused subscribe, %d subscriptions; want 3: %v", got, session.Subscriptions())
	}
	if n := srv.Engine().Subscribers("/b/1"); n != 0 {
		t.Errorf("Subscribers(/b/1) = %d after a refused subscribe; want 0", n)
	}

	// Up to the limit exactly, then one more is refused; an unsubscribe
	// makes room again.
	wantSuccess(t, c.subscribe([]string{"/b/1", "/b/2"}))
	wantFailure(t, c.subscribe("/b/3"), "403:per_session:subscription_limit")
	wantSuccess(t, c.subscribe("/a/1")) // already subscribed: no new room needed
	if r, _ := c.must(c.Unsubscribe(c.ctx, "/a/1")); !r.Successful() {
		t.Fatalf("unsubscribe failed: %v", r)
	}
	wantSuccess(t, c.subscribe("/b/3"))

	if got := stats.SubscribeLimited.Load() - before; got != 3 {
		t.Errorf("Stats.SubscribeLimited went up by %d; want 3", got)
	}
}

// The default limits refuse a session 100,000 subscriptions.
func TestSubscribeLimitsDefault(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	var names []string
	for i := range 101 {
		names = append(names, fmt.Sprintf("/many/%d", i))
	}
	wantFailure(t, c.subscribe(names), "403:per_message:subscription_limit")
	for i := 0; i < 1000; i += 100 {
		wantSuccess(t, c.subscribe(names[:100]))
		for j := range names[:100] {
			names[j] = fmt.Sprintf("/many/%d", i+100+j)
		}
	}
	if got := len(srv.Engine().Session(c.ClientID).Subscriptions()); got != 1000 {
		t.Fatalf("%d subscriptions; want 1000", got)
	}
	wantFailure(t, c.subscribe("/one/more"), "403:per_session:subscription_limit")
}

// A connect held on a websocket keeps of its request only what the reply
// needs, not the request's ext: sessions that each sent a 1 MiB ext with
// their held connect retain far less than that. The bound, 100 KiB per
// session, is a tenth of the ext and over ten times what a held connect
// costs without it (about 1 KB). The reply still answers the timesync
// the request asked for.
func TestHeldConnectDoesNotRetainExt(t *testing.T) {
	// Not parallel: it measures the heap.
	const (
		sessions = 10
		extBytes = 1 << 20
		bound    = extBytes / 10
		tc       = 1234567 // the client's timesync clock
	)
	// Holds and sessions that outlast a slow (race-detector) run.
	srv := newServer(t, time.Minute, func(c *config.Config) {
		c.Bayeux.MaxInterval = config.Duration(time.Minute)
		c.Limits.MaxRequestBytes = 2 * extBytes
	})
	pad := strings.Repeat("x", extBytes)
	clients := make([]*gatewaytest.WSClient, sessions)
	for i := range clients {
		ws, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if r, _, err := ws.Handshake(prompt, nil); err != nil || !r.Successful() {
			t.Fatalf("handshake: %v %v", r, err)
		}
		if r, _, err := ws.Call(prompt, "/meta/connect", M{"connectionType": "websocket", "advice": M{"timeout": 0}}); err != nil || !r.Successful() {
			t.Fatalf("first connect: %v %v", r, err)
		}
		clients[i] = ws
	}
	before := heapAlloc()
	for _, ws := range clients {
		frame := `[{"channel":"/meta/connect","id":"9","clientId":"` + ws.ClientID + `","connectionType":"websocket",` +
			`"ext":{"pad":"` + pad + `","timesync":{"tc":` + fmt.Sprint(tc) + `,"l":100,"o":5000}}}]`
		if err := ws.SendRaw([]byte(frame)); err != nil {
			t.Fatal(err)
		}
		s := srv.Engine().Session(ws.ClientID)
		gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
			if !s.Held() {
				return errors.New("connect not held")
			}
			return nil
		})
	}
	after := heapAlloc()
	runtime.KeepAlive(pad) // live in both measures
	per := (int64(after) - int64(before)) / sessions
	t.Logf("held connects with a %d-byte ext: %d bytes retained per session", extBytes, per)
	if per > bound {
		t.Errorf("each held connect retains %d bytes; want at most %d (its request's ext was %d bytes)", per, bound, extBytes)
	}

	// The reply still carries what the timesync extension kept.
	ws := clients[0]
	srv.Engine().Session(ws.ClientID).Disconnect()
	frames, err := ws.ReadUntil(prompt, func(m M) bool { return m.Channel() == "/meta/connect" })
	if err != nil {
		t.Fatal(err)
	}
	r, _ := gatewaytest.FindReply(frames[len(frames)-1], "/meta/connect", "")
	ts := r.Obj("ext").Obj("timesync")
	if ts["tc"] != float64(tc) {
		t.Fatalf("held connect reply %v; want ext.timesync with tc %d echoed", r, tc)
	}
	for _, k := range []string{"ts", "p"} {
		if _, ok := ts[k].(float64); !ok {
			t.Errorf("ext.timesync.%s = %v; want a number", k, ts[k])
		}
	}
}

// heapAlloc returns the bytes of live heap objects after a full collection.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
