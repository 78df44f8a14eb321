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
