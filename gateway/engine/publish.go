package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
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

// OnQueueMaxed registers fn to run when a session's queue overflows its
// bound (with the bound), just before the session is disconnected as slow
// (CometD's QueueMaxedListener, without its power to keep the message).
func (e *Engine) OnQueueMaxed(fn func(*Session, int)) {
	e.listenersMu.Lock()
	defer e.listenersMu.Unlock()
	e.queueMaxed = append(e.queueMaxed, fn)
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
	if _, err := e.inbound(ctx, plugins.FromClient, s, name, m); err != nil {
		r.Fail(err)
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

func (e *Engine) runHandlers(ctx context.Context, src plugins.Source, s *Session, name string, m *bayeux.Message) *bayeux.Error {
	e.listenersMu.RLock()
	hs := e.publishers
	e.listenersMu.RUnlock()
	wrapped := false
	for _, h := range hs {
		if !bayeux.Match(h.pattern, name) {
			continue
		}
		if !wrapped {
			ctx, wrapped = withSource(ctx, src), true
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

// PublishChecked broadcasts m from the control API through the inbound
// path as a client's publish without a session (see inbound). It returns
// how many sessions the message was queued for; errors are
// ErrInvalidChannel, ErrClosing or a *bayeux.Error.
func (e *Engine) PublishChecked(ctx context.Context, m *bayeux.Message) (int, error) {
	return e.Inject(ctx, plugins.FromAPI, m)
}

// Publish broadcasts data (and ext, which may be nil) on channel from a
// server component (a backend stream, the demo) through the inbound path,
// and returns how many sessions it was queued for. The channel must be a
// valid, non-wildcard broadcast channel. Once the engine is closing, it
// fails with ErrClosing.
func (e *Engine) Publish(channel string, data, ext json.RawMessage) (int, error) {
	return e.Inject(context.Background(), plugins.FromBackend, &bayeux.Message{Channel: channel, Data: data, Ext: ext})
}

// Inject sends broadcast message m into the engine from src, which is not
// FromClient (clients publish through Process): FromAPI (checked by the
// policies like a client's publish), FromBackend (a trusted component), or
// FromBroker (another node, whose inbound path has already run the
// policies, the inbound filters and the publish handlers: only fan-out is
// left). It returns how many sessions m was queued for; errors are
// ErrInvalidChannel, ErrClosing or a *bayeux.Error.
func (e *Engine) Inject(ctx context.Context, src plugins.Source, m *bayeux.Message) (int, error) {
	name, wild, ok := bayeux.ParseChannel(m.Channel)
	if !ok || wild != bayeux.NotWild || bayeux.KindOf(name) != bayeux.KindBroadcast {
		return 0, fmt.Errorf("%w: %q", ErrInvalidChannel, m.Channel)
	}
	n, err := e.inbound(ctx, src, nil, name, m)
	if err != nil {
		if err == errShuttingDown {
			return 0, ErrClosing
		}
		return 0, err
	}
	return n, nil
}

// inbound is the one path by which every publish enters the engine: a
// client's (s is its session) on any transport, the control API's, a
// backend stream's, and another node's through the broker. In order:
//
//  1. the policies' CanCreate (for a channel not known yet) and
//     CanPublish, for clients and the API;
//  2. a client's publish to a /service/ channel that no handler serves is
//     refused with 404::service_unknown;
//  3. the inbound filters of the channel, once per message (plugins);
//  4. the publish handlers (remote calls, backend publish hooks), which
//     see the source through SourceFrom(ctx);
//  5. for broadcast channels, fan-out: the message is encoded once and
//     passes each subscriber's outbound point (see deliver).
//
// A message from the broker skips 1 to 4: the node where it entered ran
// them. A failure returns the Bayeux error for the publisher.
func (e *Engine) inbound(ctx context.Context, src plugins.Source, s *Session, name string, m *bayeux.Message) (int, *bayeux.Error) {
	kind := bayeux.KindOf(name)
	if src == plugins.FromClient || src == plugins.FromAPI {
		if kind != bayeux.KindService && !e.channels.exists(name) {
			if err := e.policy.CanCreate(ctx, s, name, m); err != nil {
				return 0, e.denial(err, bayeux.ErrChannelCreateDenied, "create")
			}
			if s != nil {
				e.channels.create(name)
			}
		}
		if err := e.policy.CanPublish(ctx, s, name, m); err != nil {
			return 0, e.denial(err, bayeux.ErrPublishDenied, "publish")
		}
		if kind == bayeux.KindService && !e.handled(name) {
			return 0, errServiceUnknown
		}
	}
	var route *plugins.Route
	if p := e.plugins.Load(); p != nil {
		route = p.Route(name)
	}
	if src != plugins.FromBroker {
		if route != nil && len(route.In) > 0 {
			if err := e.filterIn(ctx, src, s, route, m); err != nil {
				return 0, err
			}
		}
		if err := e.runHandlers(ctx, src, s, name, m); err != nil {
			return 0, err
		}
	}
	if kind == bayeux.KindService {
		return 0, nil
	}
	n, err := e.broadcast(s, name, m.Data, m.Ext, route, "", e.forwards(ctx, src))
	if err != nil {
		return 0, errShuttingDown // not acknowledged: the client may publish again elsewhere
	}
	return n, nil
}

type sourceKey struct{}

// withSource records where a message came from for the publish handlers.
func withSource(ctx context.Context, src plugins.Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, src)
}

// SourceFrom returns where the message a publish handler is called for
// came from (a client, the API, a backend stream), or 0 outside one.
func SourceFrom(ctx context.Context) plugins.Source {
	src, _ := ctx.Value(sourceKey{}).(plugins.Source)
	return src
}

// ErrClosing is returned for a publish once the engine is shutting down:
// it was queued for nobody.
var ErrClosing = errors.New("engine: shutting down")

var sessionSlices = sync.Pool{New: func() any { s := make([]*Session, 0, 64); return &s }}

// broadcast encodes {channel, data, ext} once (never the publisher's id or
// clientId) and queues the same bytes for every matching subscriber,
// through each one's outbound point when the channel has outbound filters.
// With fwd, the message is first handed to the broker for the other nodes
// (as it was before this node's Senders ran: each node runs its own); via
// is Receive's (see channels.match).
func (e *Engine) broadcast(from *Session, name string, data, ext json.RawMessage, route *plugins.Route, via string, fwd bool) (int, error) {
	if fwd && !e.closing.Load() {
		// The broker counts what it could not send.
		if err := e.broker.Publish(name, data, ext); err != nil {
			e.log.Debug("broadcast not forwarded to the other nodes", "channel", name, "err", err)
		}
	}
	out := bayeux.Message{Channel: name, Data: data, Ext: ext}
	e.send(&out)
	b := bayeux.AppendMessage(make([]byte, 0, 32+len(name)+len(data)+len(ext)), &out)
	if route != nil && len(route.Out) > 0 {
		return e.fanout(name, via, b, from, &out, route.Out)
	}
	return e.fanout(name, via, b, from, nil, nil)
}

// Fanout queues an encoded message for every session subscribed to a
// pattern matching channel name, each once, skipping from when the
// publisher must not get its own broadcasts. b is shared: it must never be
// modified afterwards. Once Close has begun it queues nothing and fails
// with ErrClosing: a message is either queued for every subscriber before
// their sessions end (and goes out with their final replies) or refused.
// Fanout bypasses the channel's outbound filters: it is for bytes that
// have passed them (or a channel that has none).
func (e *Engine) Fanout(name string, b []byte, from *Session) (int, error) {
	return e.fanout(name, "", b, from, nil, nil)
}

// fanout is Fanout, and with out (the channel's outbound filters) each
// subscriber's delivery of m (encoded as b) passes them (see filterOut)
// and gets b unless a filter rewrote it for that subscriber.
func (e *Engine) fanout(name, via string, b []byte, from *Session, m *bayeux.Message, out plugins.Chain) (int, error) {
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
	subs := e.channels.match(name, via, (*p)[:0])
	n := 0
	if out == nil {
		for _, s := range subs {
			if s == from && e.cfg.NoBroadcastToPublisher {
				continue
			}
			s.enqueue(b, false)
			n++
		}
	} else {
		n = e.fanoutThrough(subs, from, b, m, out)
	}
	clear(subs)
	*p = subs[:0]
	sessionSlices.Put(p)
	e.stats.Delivered.Add(int64(n))
	return n, nil
}
