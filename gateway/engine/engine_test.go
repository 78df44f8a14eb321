package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

func newEngine(t testing.TB, cfg engine.Config, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e := engine.New(cfg, opts...)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

// send processes one batch for client c and returns the final replies.
func send(t testing.TB, e *engine.Engine, c *engine.Client, raw string) ([]*bayeux.Message, *engine.Batch) {
	t.Helper()
	msgs, err := bayeux.Decode([]byte(raw), 0)
	if err != nil {
		t.Fatalf("Decode(%s): %v", raw, err)
	}
	b := e.Process(context.Background(), c, msgs)
	var replies []*bayeux.Message
	for _, x := range b.Exchanges {
		if x.IsConnect() && x.Reply.Successful {
			x.Session.Complete(x, nil, 0)
		}
		replies = append(replies, x.Reply)
	}
	return replies, b
}

// handshake returns a connected session for a long-polling client.
func handshake(t testing.TB, e *engine.Engine, c *engine.Client, ext string) *engine.Session {
	t.Helper()
	if ext == "" {
		ext = "{}"
	}
	r, b := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0","ext":`+ext+`}]`)
	b.End()
	if !r[0].Successful {
		t.Fatalf("handshake failed: %s", r[0])
	}
	s := e.Session(r[0].ClientID)
	r, b = send(t, e, c, `[{"channel":"/meta/connect","clientId":"`+s.ID()+`","connectionType":"long-polling"}]`)
	b.End()
	if !r[0].Successful {
		t.Fatalf("first connect failed: %s", r[0])
	}
	return s
}

func lpClient(browser string) *engine.Client {
	return &engine.Client{Transport: "long-polling", Browser: browser}
}

func events(s *engine.Session) []string {
	var out []string
	for _, b := range s.Take(nil, 0) {
		out = append(out, string(b))
	}
	return out
}

func TestFanoutWildcardsAndDedup(t *testing.T) {
	e := newEngine(t, engine.Config{})
	a, b := lpClient("A"), lpClient("B")
	sa, sb := handshake(t, e, a, ""), handshake(t, e, b, "")
	r, bt := send(t, e, a, `[{"channel":"/meta/subscribe","clientId":"`+sa.ID()+`","subscription":["/foo/*","/foo/bar","/**"]}]`)
	bt.End()
	if !r[0].Successful {
		t.Fatalf("subscribe: %s", r[0])
	}
	r, bt = send(t, e, b, `[{"id":"7","channel":"/foo/bar","clientId":"`+sb.ID()+`","data":{"x":1},"ext":{"k":"v"}}]`)
	bt.End()
	if got := r[0].String(); got != `{"channel":"/foo/bar","id":"7","successful":true}` {
		t.Errorf("publish reply = %s", got)
	}
	got := events(sa)
	want := []string{`{"channel":"/foo/bar","data":{"x":1},"ext":{"k":"v"}}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events = %v; want %v (once, without id or clientId)", got, want)
	}
	for _, ch := range []string{"/foo/bar/baz", "/other"} {
		e.Publish(ch, json.RawMessage(`1`), nil)
	}
	// "/**" matches both; "/foo/*" and "/foo/bar" match neither.
	got = events(sa)
	want = []string{`{"channel":"/foo/bar/baz","data":1}`, `{"channel":"/other","data":1}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events = %v; want %v", got, want)
	}
}

func TestFanoutMatchesOnlyTheRightPatterns(t *testing.T) {
	e := newEngine(t, engine.Config{})
	subs := map[string]*engine.Session{}
	for _, p := range []string{"/foo/*", "/foo/**", "/**", "/foo", "/foo/bar"} {
		c := lpClient("b" + p)
		s := handshake(t, e, c, "")
		_, bt := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"`+p+`"}]`)
		bt.End()
		subs[p] = s
	}
	tests := []struct {
		channel string
		want    []string
	}{
		{"/foo/bar", []string{"/foo/*", "/foo/**", "/**", "/foo/bar"}},
		{"/foo/bar/baz", []string{"/foo/**", "/**"}},
		{"/foo", []string{"/**", "/foo"}},
		{"/foobar", []string{"/**"}},
	}
	for _, tt := range tests {
		n, err := e.Publish(tt.channel, json.RawMessage(`"x"`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(tt.want) {
			t.Errorf("Publish(%s) reached %d sessions; want %d", tt.channel, n, len(tt.want))
		}
		for p, s := range subs {
			got := len(events(s)) == 1
			want := false
			for _, w := range tt.want {
				want = want || w == p
			}
			if got != want {
				t.Errorf("Publish(%s): subscriber of %s got=%v want=%v", tt.channel, p, got, want)
			}
		}
	}
}

func TestServiceChannelsAreNotBroadcast(t *testing.T) {
	e := newEngine(t, engine.Config{})
	a, b := lpClient("A"), lpClient("B")
	sa, sb := handshake(t, e, a, ""), handshake(t, e, b, "")
	var got []string
	e.HandlePublish("/service/**", func(_ context.Context, s *engine.Session, m *bayeux.Message) error {
		got = append(got, s.ID()+" "+m.Channel)
		return nil
	})
	_, bt := send(t, e, a, `[{"channel":"/meta/subscribe","clientId":"`+sa.ID()+`","subscription":["/service/x","/**"]}]`)
	bt.End()
	r, bt := send(t, e, b, `[{"channel":"/service/x","clientId":"`+sb.ID()+`","data":1}]`)
	bt.End()
	if !r[0].Successful {
		t.Fatalf("publish: %s", r[0])
	}
	if ev := events(sa); len(ev) != 0 {
		t.Errorf("service publish reached a subscriber: %v", ev)
	}
	if len(got) != 1 || got[0] != sb.ID()+" /service/x" {
		t.Errorf("handler saw %v", got)
	}
}

func TestHandlerErrorFailsPublish(t *testing.T) {
	e := newEngine(t, engine.Config{})
	c := lpClient("A")
	s := handshake(t, e, c, "")
	e.HandlePublish("/guarded", func(context.Context, *engine.Session, *bayeux.Message) error {
		return &bayeux.Error{Code: 403, Args: "nope", Message: "publish_denied"}
	})
	e.HandlePublish("/vetoed", func(context.Context, *engine.Session, *bayeux.Message) error {
		return fmt.Errorf("some internal reason")
	})
	e.HandlePublish("/panics", func(context.Context, *engine.Session, *bayeux.Message) error { panic("boom") })
	for ch, want := range map[string]string{"/guarded": "403:nope:publish_denied", "/vetoed": "404::message_deleted", "/panics": "500::internal_error"} {
		r, bt := send(t, e, c, `[{"channel":"`+ch+`","clientId":"`+s.ID()+`","data":1}]`)
		bt.End()
		if r[0].Successful || r[0].Error != want {
			t.Errorf("publish %s: %s; want error %s", ch, r[0], want)
		}
	}
	if s.Closed() {
		t.Error("a handler panic closed the session")
	}
}

func TestCookieMismatchIsUnknownSession(t *testing.T) {
	e := newEngine(t, engine.Config{})
	s := handshake(t, e, lpClient("A"), "")
	r, bt := send(t, e, lpClient("B"), `[{"channel":"/meta/connect","clientId":"`+s.ID()+`","connectionType":"long-polling"}]`)
	bt.End()
	if r[0].Successful || r[0].Error != "402::session_unknown" || r[0].Advice == nil || r[0].Advice.Reconnect != "handshake" {
		t.Errorf("connect from another browser = %s", r[0])
	}
	trusted := &engine.Client{Transport: "long-polling", TrustSession: true}
	r, bt = send(t, e, trusted, `[{"channel":"/meta/connect","clientId":"`+s.ID()+`","connectionType":"long-polling","advice":{"timeout":0}}]`)
	bt.End()
	if !r[0].Successful {
		t.Errorf("trusted connect = %s", r[0])
	}
}

func TestSlowSessionIsDisconnected(t *testing.T) {
	e := newEngine(t, engine.Config{MaxQueue: 3})
	c := lpClient("A")
	s := handshake(t, e, c, "")
	var reason engine.CloseReason
	e.OnSessionRemoved(func(_ *engine.Session, r engine.CloseReason) { reason = r })
	_, bt := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"/t"}]`)
	bt.End()
	for i := 0; i < 4; i++ {
		e.Publish("/t", json.RawMessage(`1`), nil)
	}
	if !s.Closed() || reason != engine.CloseSlow {
		t.Errorf("after overflow: closed=%v reason=%v; want closed as slow", s.Closed(), reason)
	}
	if n := e.Subscribers("/t"); n != 0 {
		t.Errorf("slow session still subscribed: %d subscribers", n)
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEngine(t, engine.Config{MaxInterval: 50 * time.Millisecond, SweepPeriod: 10 * time.Millisecond})
	s := handshake(t, e, lpClient("A"), "")
	deadline := time.Now().Add(5 * time.Second)
	for e.Session(s.ID()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("session did not expire")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.CloseReason() != engine.CloseExpired {
		t.Errorf("reason = %v; want expired", s.CloseReason())
	}
}

func TestHeldConnectDoesNotExpire(t *testing.T) {
	e := newEngine(t, engine.Config{MaxInterval: 30 * time.Millisecond, SweepPeriod: 10 * time.Millisecond, Timeout: time.Second})
	c := lpClient("A")
	s := handshake(t, e, c, "")
	_, b := send(t, e, c, `[{"channel":"/meta/connect","clientId":"`+s.ID()+`","connectionType":"long-polling"}]`)
	b.End()
	h := s.Park(b.Exchanges[0])
	if !s.Held() {
		t.Fatal("Held() = false after Park")
	}
	// Five times maxInterval, with sweeps every 10ms.
	time.Sleep(150 * time.Millisecond)
	if s.Closed() {
		t.Fatal("session expired while its connect was held")
	}
	s.Unpark(h, false)
	if s.Held() {
		t.Fatal("Held() = true after Unpark")
	}
}

func TestAckRedeliversLostBatch(t *testing.T) {
	e := newEngine(t, engine.Config{Ack: true})
	c := lpClient("A")
	r, bt := send(t, e, c, `[{"channel":"/meta/handshake","ext":{"ack":true}}]`)
	bt.End()
	if !strings.Contains(r[0].String(), `"ack":true`) {
		t.Fatalf("handshake reply lacks ext.ack: %s", r[0])
	}
	s := e.Session(r[0].ClientID)
	connect := func(ack int) (*bayeux.Message, []string) {
		msgs, _ := bayeux.Decode([]byte(fmt.Sprintf(`[{"channel":"/meta/connect","clientId":"%s","ext":{"ack":%d}}]`, s.ID(), ack)), 0)
		b := e.Process(context.Background(), c, msgs)
		b.End()
		x := b.Exchanges[0]
		var out []string
		for _, ev := range x.Session.Complete(x, nil, 0) {
			out = append(out, string(ev))
		}
		return x.Reply, out
	}
	r1, _ := connect(0) // batch 1, empty
	_, bt = send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"/t"}]`)
	bt.End()
	if ev := events(s); len(ev) != 0 {
		t.Fatalf("ack session got events outside connect replies: %v", ev)
	}
	e.Publish("/t", json.RawMessage(`"m1"`), nil)
	r2, ev2 := connect(1) // batch 2 carries m1; pretend it is lost
	if len(ev2) != 1 {
		t.Fatalf("batch 2 events = %v", ev2)
	}
	e.Publish("/t", json.RawMessage(`"m2"`), nil)
	r3, ev3 := connect(1) // client still at batch 1: m1 again, then m2
	if strings.Join(ev3, "|") != `{"channel":"/t","data":"m1"}|{"channel":"/t","data":"m2"}` {
		t.Errorf("redelivery = %v", ev3)
	}
	_, ev4 := connect(3)
	if len(ev4) != 0 {
		t.Errorf("after ack 3, events = %v", ev4)
	}
	for i, r := range []*bayeux.Message{r1, r2, r3} {
		if want := fmt.Sprintf(`"ack":%d`, i+1); !strings.Contains(r.String(), want) {
			t.Errorf("connect reply %d = %s; want %s", i+1, r, want)
		}
	}
}

func TestUserBinding(t *testing.T) {
	e := newEngine(t, engine.Config{})
	s1, s2 := handshake(t, e, lpClient("A"), ""), handshake(t, e, lpClient("B"), "")
	s1.SetUser("alice")
	s2.SetUser("alice")
	if n := len(e.UserSessions("alice")); n != 2 {
		t.Fatalf("UserSessions = %d; want 2", n)
	}
	s2.SetUser("bob")
	s1.Disconnect()
	if n := len(e.UserSessions("alice")); n != 0 {
		t.Errorf("UserSessions(alice) after disconnect = %d", n)
	}
	if n := len(e.UserSessions("bob")); n != 1 {
		t.Errorf("UserSessions(bob) = %d", n)
	}
}

type countListener struct {
	mu     sync.Mutex
	counts []int
}

func (l *countListener) Subscribed(_ *engine.Session, ch string, n int) {
	l.mu.Lock()
	l.counts = append(l.counts, n)
	l.mu.Unlock()
}

func (l *countListener) Unsubscribed(_ *engine.Session, ch string, n int) {
	l.mu.Lock()
	l.counts = append(l.counts, -n)
	l.mu.Unlock()
}

func TestSubscriptionListenerCounts(t *testing.T) {
	e := newEngine(t, engine.Config{})
	l := &countListener{}
	e.AddSubscriptionListener(l)
	a, b := lpClient("A"), lpClient("B")
	sa, sb := handshake(t, e, a, ""), handshake(t, e, b, "")
	for _, step := range []struct {
		c  *engine.Client
		s  *engine.Session
		ch string
	}{{a, sa, "/meta/subscribe"}, {b, sb, "/meta/subscribe"}, {a, sa, "/meta/unsubscribe"}} {
		_, bt := send(t, e, step.c, `[{"channel":"`+step.ch+`","clientId":"`+step.s.ID()+`","subscription":"/t"}]`)
		bt.End()
	}
	sb.Disconnect() // its subscription ends with the session
	if got := fmt.Sprint(l.counts); got != "[1 2 -1 0]" {
		t.Errorf("listener counts = %s; want [1 2 -1 0] (first, second, one left, last gone)", got)
	}
}

// benchmark fixtures

type nopConn struct{}

func (nopConn) Wake(bool) {}

func benchFanout(b *testing.B, n int) {
	e := engine.New(engine.Config{MaxQueue: 1 << 20, MaxQueueBytes: 1 << 30})
	sessions := benchSubscribers(b, e, n, "/bench/room")
	data := json.RawMessage(`{"user":"alice","chat":"hello, world","ts":1732512345678}`)
	drain := make([][]byte, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Publish("/bench/room", data, nil)
		for _, s := range sessions {
			drain, _ = s.Pull(drain[:0], 0, 1<<20)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkFanout publishes one message to N subscribers and drains every
// subscriber's queue, as a websocket flush would: ns/delivery is the cost
// per subscriber; allocs/op is per message, whatever N.
func BenchmarkFanout_1Sub(b *testing.B)     { benchFanout(b, 1) }
func BenchmarkFanout_100Subs(b *testing.B)  { benchFanout(b, 100) }
func BenchmarkFanout_1000Subs(b *testing.B) { benchFanout(b, 1000) }
func BenchmarkFanout_10000Subs(b *testing.B) {
	benchFanout(b, 10000)
}

// BenchmarkMatchManyWildcards matches a channel against a trie holding
// 10,000 subscribed patterns of which 4 apply.
func BenchmarkMatchManyWildcards(b *testing.B) {
	e := engine.New(engine.Config{})
	c := &engine.Client{Transport: "websocket", Push: true, Conn: nopConn{}}
	msgs, _ := bayeux.Decode([]byte(`[{"channel":"/meta/handshake"}]`), 0)
	bt := e.Process(context.Background(), c, msgs)
	bt.End()
	s := bt.Exchanges[0].Session
	var subs []string
	for i := 0; i < 2500; i++ {
		subs = append(subs, fmt.Sprintf(`"/stocks/s%d/*","/stocks/s%d/**","/news/n%d","/news/n%d/*"`, i, i, i, i))
	}
	msgs, _ = bayeux.Decode([]byte(`[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":[`+strings.Join(subs, ",")+`]}]`), 0)
	e.Process(context.Background(), c, msgs).End()
	b.ReportAllocs()
	for b.Loop() {
		if n, _ := e.Publish("/stocks/s1234/quote", json.RawMessage(`1`), nil); n != 1 {
			b.Fatalf("reached %d", n)
		}
		s.Pull(nil, 0, 1<<20)
	}
}
