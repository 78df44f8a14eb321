package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// PublishHandler is called for a client's publish to a channel matching the
// pattern it was registered for, after the security checks and before any
// fan-out; s is nil for a publish from the server side (PublishChecked). It may change m.Data (the subscribers then get the new data).
// Returning an error fails the publish: a *bayeux.Error is sent as is, any
// other error as 404::message_deleted. Handlers run on the client's request
// path; one that waits on a backend must honour ctx, and one that answers
// later (a remote call) should return at once and Deliver the answer.
type PublishHandler func(ctx context.Context, s *Session, m *bayeux.Message) error

type publishHandler struct {
	pattern string
	fn      PublishHandler
}

// HandlePublish registers fn for publishes on channels matching pattern
// ("/service/echo", "/chat/*", "/service/**"). Handlers of all matching
// patterns run, in registration order. A client's publish to a /service/
// channel that no handler's pattern matches is answered at once with
// 404::service_unknown, since nothing would ever answer it.
func (e *Engine) HandlePublish(pattern string, fn PublishHandler) error {
	name, _, ok := bayeux.ParseChannel(pattern)
	if !ok {
		return fmt.Errorf("engine: invalid channel pattern %q", pattern)
	}
	e.listenersMu.Lock()
	defer e.listenersMu.Unlock()
	e.publishers = append(e.publishers, publishHandler{name, fn})
	return nil
}

// OnSessionAdded registers fn to run after each successful handshake.
func (e *Engine) OnSessionAdded(fn func(*Session)) {
	e.listenersMu.Lock()
	defer e.listenersMu.Unlock()
	e.added = append(e.added, fn)
}

// OnSessionRemoved registers fn to run after a session is removed, for any
// reason.
func (e *Engine) OnSessionRemoved(fn func(*Session, CloseReason)) {
	e.listenersMu.Lock()
	defer e.listenersMu.Unlock()
	e.removed = append(e.removed, fn)
}

// SubscriptionListener is told about every subscription change, with the
// channel's subscriber count after the change (so 1 means "first" and 0
// "last"). Methods are called without engine locks held.
type SubscriptionListener interface {
	Subscribed(s *Session, channel string, subscribers int)
	Unsubscribed(s *Session, channel string, subscribers int)
}

// AddSubscriptionListener registers l.
func (e *Engine) AddSubscriptionListener(l SubscriptionListener) {
	e.listenersMu.Lock()
	defer e.listenersMu.Unlock()
	e.subs = append(e.subs, l)
}

// Subscribers returns the number of sessions subscribed to channel name
// (exactly that name, not wildcards matching it).
func (e *Engine) Subscribers(name string) int { return e.channels.count(name) }

// Channels lists the known channels (meta channels excluded).
func (e *Engine) Channels() []ChannelInfo { return e.channels.list() }

func (e *Engine) publish(ctx context.Context, x *Exchange) {
	m, r, s := x.Request, x.Reply, x.Session
	if s == nil {
		r.Fail(bayeux.ErrSessionUnknown)
		return
	}
	name, wild, ok := bayeux.ParseChannel(m.Channel)
	if !ok || wild != bayeux.NotWild {
		r.Fail(bayeux.ErrChannelInvalid)
		return
	}
	kind := bayeux.KindOf(name)
	if kind != bayeux.KindService && !e.channels.exists(name) {
		if err := e.policy.CanCreate(ctx, s, name, m); err != nil {
			r.Fail(e.denial(err, bayeux.ErrChannelCreateDenied, "create"))
			return
		}
		e.channels.create(name)
	}
	if err := e.policy.CanPublish(ctx, s, name, m); err != nil {
		r.Fail(e.denial(err, bayeux.ErrPublishDenied, "publish"))
		return
	}
	if kind == bayeux.KindService && !e.handled(name) {
		r.Fail(errServiceUnknown)
		return
	}
	if err := e.runHandlers(ctx, s, name, m); err != nil {
		r.Fail(err)
		return
	}
	if kind == bayeux.KindService {
		return
	}
	if _, err := e.broadcast(s, name, m.Data, m.Ext); err != nil {
		r.Fail(errShuttingDown) // not acknowledged: the client may publish again elsewhere
	}
}

// errServiceUnknown answers a publish to a /service/ channel that no
// publish handler serves: a remote call that nothing would answer.
var errServiceUnknown = &bayeux.Error{Code: 404, Message: "service_unknown"}

// handled reports whether a publish handler's pattern matches channel name.
func (e *Engine) handled(name string) bool {
	e.listenersMu.RLock()
	defer e.listenersMu.RUnlock()
	for _, h := range e.publishers {
		if bayeux.Match(h.pattern, name) {
			return true
		}
	}
	return false
}

func (e *Engine) runHandlers(ctx context.Context, s *Session, name string, m *bayeux.Message) *bayeux.Error {
	e.listenersMu.RLock()
	hs := e.publishers
	e.listenersMu.RUnlock()
	for _, h := range hs {
		if !bayeux.Match(h.pattern, name) {
			continue
		}
		if err := e.callHandler(ctx, h.fn, s, m); err != nil {
			var be *bayeux.Error
			if errors.As(err, &be) {
				return be
			}
			e.log.Debug("publish handler rejected message", "channel", name, "err", err)
			return bayeux.ErrMessageDeleted
		}
	}
	return nil
}

// callHandler runs fn, turning a panic into an error for this message only.
func (e *Engine) callHandler(ctx context.Context, fn PublishHandler, s *Session, m *bayeux.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("publish handler panicked", "channel", m.Channel, "panic", p)
			err = bayeux.ErrInternal
		}
	}()
	return fn(ctx, s, m)
}

// ErrInvalidChannel is returned by Publish for a name that is not a valid
// broadcast channel.
var ErrInvalidChannel = errors.New("engine: not a valid broadcast channel")

// PublishChecked broadcasts m from the server side (an API call) through
// the same path as a client's publish without a session: the policy's
// CanCreate and CanPublish, then the publish handlers (which may rewrite
// m.Data or veto), then fan-out. It returns how many sessions the message
// was queued for; errors are ErrInvalidChannel, ErrClosing or a
// *bayeux.Error.
func (e *Engine) PublishChecked(ctx context.Context, m *bayeux.Message) (int, error) {
	name, wild, ok := bayeux.ParseChannel(m.Channel)
	if !ok || wild != bayeux.NotWild || bayeux.KindOf(name) != bayeux.KindBroadcast {
		return 0, fmt.Errorf("%w: %q", ErrInvalidChannel, m.Channel)
	}
	if !e.channels.exists(name) {
		if err := e.policy.CanCreate(ctx, nil, name, m); err != nil {
			return 0, e.denial(err, bayeux.ErrChannelCreateDenied, "create")
		}
	}
	if err := e.policy.CanPublish(ctx, nil, name, m); err != nil {
		return 0, e.denial(err, bayeux.ErrPublishDenied, "publish")
	}
	if err := e.runHandlers(ctx, nil, name, m); err != nil {
		return 0, err
	}
	return e.broadcast(nil, name, m.Data, m.Ext)
}

// Publish broadcasts data (and ext, which may be nil) on channel from the
// server side and returns how many sessions it was queued for. The channel
// must be a valid, non-wildcard broadcast channel. Once the engine is
// closing, it fails with ErrClosing.
func (e *Engine) Publish(channel string, data, ext json.RawMessage) (int, error) {
	name, wild, ok := bayeux.ParseChannel(channel)
	if !ok || wild != bayeux.NotWild || bayeux.KindOf(name) != bayeux.KindBroadcast {
		return 0, fmt.Errorf("%w: %q", ErrInvalidChannel, channel)
	}
	return e.broadcast(nil, name, data, ext)
}

// ErrClosing is returned for a publish once the engine is shutting down:
// it was queued for nobody.
var ErrClosing = errors.New("engine: shutting down")

var sessionSlices = sync.Pool{New: func() any { s := make([]*Session, 0, 64); return &s }}

// broadcast encodes {channel, data, ext} once (never the publisher's id or
// clientId) and queues the same bytes for every matching subscriber.
func (e *Engine) broadcast(from *Session, name string, data, ext json.RawMessage) (int, error) {
	out := bayeux.Message{Channel: name, Data: data, Ext: ext}
	e.send(&out)
	b := bayeux.AppendMessage(make([]byte, 0, 32+len(name)+len(data)+len(ext)), &out)
	return e.Fanout(name, b, from)
}

// Fanout queues an encoded message for every session subscribed to a
// pattern matching channel name, each once, skipping from when the
// publisher must not get its own broadcasts. b is shared: it must never be
// modified afterwards. Once Close has begun it queues nothing and fails
// with ErrClosing: a message is either queued for every subscriber before
// their sessions end (and goes out with their final replies) or refused.
func (e *Engine) Fanout(name string, b []byte, from *Session) (int, error) {
	// Counted in flight before closing is checked, and Close sets closing
	// before it waits for the count to reach zero: a fan-out either sees
	// closing or is waited for. (A counter, not a lock: a fan-out may
	// publish again from a listener, e.g. of a session it ends as slow.)
	e.fanouts.Add(1)
	defer e.fanouts.Add(-1)
	if e.closing.Load() {
		return 0, ErrClosing
	}
	e.stats.Published.Add(1)
	p := sessionSlices.Get().(*[]*Session)
	subs := e.channels.match(name, (*p)[:0])
	n := 0
	for _, s := range subs {
		if s == from && e.cfg.NoBroadcastToPublisher {
			continue
		}
		s.enqueue(b, false)
		n++
	}
	clear(subs)
	*p = subs[:0]
	sessionSlices.Put(p)
	e.stats.Delivered.Add(int64(n))
	return n, nil
}
