package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// racePolicy, asked about channel on, first runs another subscribe of the
// same session: a concurrent request taking the room meanwhile.
type racePolicy struct {
	engine.DefaultPolicy
	on    string
	other func()
}

func (p racePolicy) CanSubscribe(ctx context.Context, s *engine.Session, ch string, m *bayeux.Message) error {
	if ch == p.on {
		p.other()
	}
	return p.DefaultPolicy.CanSubscribe(ctx, s, ch, m)
}

// lastCount records each channel's subscriber count after its last change.
type lastCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *lastCount) Subscribed(_ *engine.Session, ch string, n int)   { l.set(ch, n) }
func (l *lastCount) Unsubscribed(_ *engine.Session, ch string, n int) { l.set(ch, n) }

func (l *lastCount) set(ch string, n int) {
	l.mu.Lock()
	l.n[ch] = n
	l.mu.Unlock()
}

func (l *lastCount) get(ch string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[ch]
}

// A subscribe message refused by the per-session limit leaves nothing
// subscribed, even when another request of the session took the room
// after the message was checked.
func TestSubscribeLimitRaceSubscribesNothing(t *testing.T) {
	c := lpClient("A")
	var e *engine.Engine
	var s *engine.Session
	var otherReply *bayeux.Message
	p := racePolicy{on: "/m/2", other: func() {
		r, b := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":["/f/1","/f/2"]}]`)
		b.End()
		otherReply = r[0]
	}}
	subs := &lastCount{n: map[string]int{}}
	e = newEngine(t, engine.Config{MaxSubscriptions: 3}, engine.WithPolicy(p))
	e.AddSubscriptionListener(subs)
	s = handshake(t, e, c, "")
	r, b := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":["/m/1","/m/2"]}]`)
	b.End()
	if !otherReply.Successful {
		t.Fatalf("the other subscribe failed: %s", otherReply)
	}
	if r[0].Successful || r[0].Error != "403:per_session:subscription_limit" {
		t.Fatalf("subscribe reply %s; want 403:per_session:subscription_limit", r[0])
	}
	got := s.Subscriptions()
	slices.Sort(got)
	if want := []string{"/f/1", "/f/2"}; !slices.Equal(got, want) {
		t.Errorf("Subscriptions() = %v; want %v", got, want)
	}
	if n := e.Subscribers("/m/1"); n != 0 {
		t.Errorf("Subscribers(/m/1) = %d; want 0 after the refusal", n)
	}
	if n := subs.get("/m/1"); n != 0 {
		t.Errorf("listener count for /m/1 = %d; want 0 (subscribed, then undone)", n)
	}
	if n := e.Stats().SubscribeLimited.Load(); n != 1 {
		t.Errorf("Stats().SubscribeLimited = %d; want 1", n)
	}
}

// SetLimits applies to the next subscribe and the next message queued;
// fields left zero take their defaults.
func TestSetLimitsApplyToNextUse(t *testing.T) {
	e := newEngine(t, engine.Config{MaxQueue: 10, MaxSubscriptions: 10})
	c := lpClient("A")
	s := handshake(t, e, c, "")
	subscribe := func(ch string) *bayeux.Message {
		t.Helper()
		r, b := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"`+ch+`"}]`)
		b.End()
		return r[0]
	}
	if r := subscribe("/a"); !r.Successful {
		t.Fatalf("subscribe /a: %s", r)
	}
	for range 3 {
		if _, err := e.Publish("/a", []byte(`{}`), nil); err != nil {
			t.Fatal(err)
		}
	}

	e.SetLimits(engine.Limits{MaxQueue: 3, MaxSubscriptions: 1})
	if got := e.Config(); got.MaxQueue != 3 || got.MaxSubscriptions != 1 || got.MaxQueueBytes != 4<<20 || got.MaxSubscribeChannels != 100 {
		t.Errorf("Config() after SetLimits = queue %d, subscriptions %d, queue bytes %d, channels per subscribe %d; want 3, 1 and the defaults",
			got.MaxQueue, got.MaxSubscriptions, got.MaxQueueBytes, got.MaxSubscribeChannels)
	}
	if r := subscribe("/b"); r.Successful {
		t.Errorf("subscribe /b past the lowered limit succeeded: %s", r)
	}
	if e.Session(s.ID()) == nil {
		t.Fatal("lowering the queue bound ended a session before its next message")
	}
	if _, err := e.Publish("/a", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if e.Session(s.ID()) != nil || e.Stats().Dropped.Load() != 1 {
		t.Errorf("a session holding 3 messages got a 4th under MaxQueue 3 and was kept (dropped %d)", e.Stats().Dropped.Load())
	}
}
