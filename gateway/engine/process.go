package engine

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// Client describes the transport side of an inbound batch.
type Client struct {
	// Transport is the connection type: websocket, long-polling or
	// callback-polling.
	Transport string
	// Push is set by transports that can send at any time (websocket).
	Push bool
	// DeliverOnly is set by transports whose events may only travel with
	// /meta/connect replies (callback-polling).
	DeliverOnly bool
	// Browser is the BAYEUX_BROWSER cookie value sent with the request.
	Browser string
	// NewBrowser is set when Browser was made moments ago for a websocket
	// upgrade that carried no cookie (this one, or the one that set the
	// cookie this request carries): such a request may still take a
	// session that has not connected yet (see Session.fromBrowser).
	NewBrowser bool
	// TrustSession accepts a clientId whose browser does not match.
	TrustSession bool
	// HandshakePerConnection refuses to resume a session on a new push
	// connection: each connection must handshake (CometD's
	// requireHandshakePerConnection).
	HandshakePerConnection bool
	// Bound is the session bound to a push connection; a handshake on the
	// connection, or its first message naming a live session, sets it.
	Bound *Session
	// Conn is the push connection to attach to Bound.
	Conn Conn
	// RemoteAddr is the client's network address.
	RemoteAddr string
	// Header holds the request headers (HTTP request or websocket upgrade).
	Header map[string][]string
}

// Batch is the result of processing one inbound batch.
type Batch struct {
	// Exchanges are the messages and their replies, in request order.
	Exchanges []*Exchange
	// Session is the session the batch belongs to, if one was resolved.
	Session *Session
	ended   bool
}

// End ends the batch. Until then, events queued for Session are kept for
// the response to this batch (the transport may Take them); after, they
// wake a held connect or the push connection. Call End exactly once, after
// taking piggybacked events and before holding a connect.
func (b *Batch) End() {
	if b.Session != nil && !b.ended {
		b.ended = true
		b.Session.endBatch()
	}
}

// Process handles msgs in order, one reply each. Handshake and connect
// replies that are final are completed by the transport: a connect
// exchange with Hold > 0 may be held (Session.Park) or completed now
// (Session.Complete); other replies are final when Process returns.
// Call Batch.End when done.
func (e *Engine) Process(ctx context.Context, c *Client, msgs []bayeux.Message) *Batch {
	now := time.Now()
	b := &Batch{Exchanges: make([]*Exchange, len(msgs))}
	defer func() {
		if p := recover(); p != nil {
			b.End() // leave the session usable, then let the transport's recovery act
			panic(p)
		}
	}()
	for i := range msgs {
		m := &msgs[i]
		x := &Exchange{Request: m, Reply: replyTo(m), Client: c, Received: now}
		b.Exchanges[i] = x
		if m.Channel != bayeux.MetaHandshake {
			if s := e.resolve(c, m); s != nil {
				x.Session = s
				if b.Session == nil {
					b.Session = s
					s.beginBatch()
				}
			}
		}
		e.handle(ctx, x)
		if !x.IsConnect() || !x.Reply.Successful {
			e.outgoing(x)
		}
	}
	return b
}

// resolve finds the session a message belongs to: for push transports the
// connection's session (unless it has moved to another connection since),
// otherwise the clientId's session if the browser cookie matches, which a
// push connection then resumes.
func (e *Engine) resolve(c *Client, m *bayeux.Message) *Session {
	if m.ClientID == "" {
		return nil
	}
	if c.Bound != nil && !c.Bound.Closed() {
		if c.Bound.id != m.ClientID || !c.Bound.attachedTo(c.Conn) {
			return nil
		}
		return c.Bound
	}
	s := e.Session(m.ClientID)
	if s == nil {
		return nil
	}
	if !c.TrustSession && !s.fromBrowser(c) {
		return nil
	}
	if c.Push {
		if c.HandshakePerConnection {
			return nil
		}
		// A new connection resuming a session (reconnect, page reload).
		if c.Bound != nil {
			c.Bound.Detach(c.Conn)
		}
		c.Bound = s
		s.Attach(c.Conn)
		return s
	}
	return s
}

func (e *Engine) handle(ctx context.Context, x *Exchange) {
	m := x.Request
	if err := m.Invalid(); err != nil {
		x.Reply.Fail(err)
		return
	}
	if m.Channel == "" {
		x.Reply.Fail(bayeux.ErrChannelMissing)
		return
	}
	switch bayeux.KindOf(m.Channel) {
	case bayeux.KindMeta:
		e.stats.MessagesMeta.Add(1)
	case bayeux.KindService:
		e.stats.MessagesService.Add(1)
	default:
		e.stats.MessagesBroadcast.Add(1)
	}
	for _, ext := range e.extensions {
		if err := ext.Incoming(x); err != nil {
			var be *bayeux.Error
			if !errors.As(err, &be) {
				be = bayeux.ErrMessageDeleted
			}
			x.Reply.Fail(be)
			return
		}
	}
	if x.Session != nil {
		x.Session.touch()
	}
	ctx = context.WithValue(ctx, exchangeKey{}, x)
	switch m.Channel {
	case bayeux.MetaHandshake:
		e.handshake(ctx, x)
	case bayeux.MetaConnect:
		e.connect(x)
	case bayeux.MetaSubscribe:
		e.subscribe(ctx, x)
	case bayeux.MetaUnsubscribe:
		e.unsubscribeMeta(x)
	case bayeux.MetaDisconnect:
		e.disconnect(x)
	default:
		e.publish(ctx, x)
	}
}

var errShuttingDown = &bayeux.Error{Code: 503, Message: "server_shutting_down", Reconnect: bayeux.ReconnectHandshake}

func (e *Engine) handshake(ctx context.Context, x *Exchange) {
	m, r, c := x.Request, x.Reply, x.Client
	if e.closing.Load() {
		e.stats.HandshakesFailed.Add(1)
		r.Fail(errShuttingDown)
		r.Advice.Interval = 1000
		return
	}
	if !e.commonConnectionType(m.SupportedConnectionTypes) {
		e.stats.HandshakesFailed.Add(1)
		r.Fail(errConnectionTypes)
		return
	}
	s := newSession(e, c)
	if err := e.policy.CanHandshake(ctx, s, m); err != nil {
		e.stats.HandshakesDenied.Add(1)
		r.Fail(e.denial(err, bayeux.ErrHandshakeDenied, "handshake"))
		if r.Advice == nil {
			r.Advice = bayeux.NewAdvice(bayeux.ReconnectNone)
		}
		return
	}
	if e.cfg.Ack && ackRequested(m.Ext) {
		s.ack = &ackState{}
		s.deliverOnly = true
		r.ExtFields = append(r.ExtFields, bayeux.ExtField{Key: "ack", Value: []byte("true")})
	}
	if c.DeliverOnly {
		s.deliverOnly = true
	}
	e.sessionsMu.Lock()
	e.sessions[s.id] = s
	e.sessionsMu.Unlock()
	if u := s.User(); u != "" { // bound by the policy before registration
		e.bindUser(s, "", u)
	}
	e.stats.Handshakes.Add(1)
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.DebugContext(ctx, "session created", "session", s.id, "transport", s.transport, "remote", s.remote)
	}
	x.Session = s
	r.ClientID = s.id
	r.Version = "1.0"
	r.MinimumVersion = "1.0"
	r.SupportedConnectionTypes = e.cfg.ConnectionTypes
	r.Advice = &bayeux.Advice{Reconnect: bayeux.ReconnectRetry, Interval: e.cfg.Interval.Milliseconds(), Timeout: e.cfg.Timeout.Milliseconds(), MaxInterval: -1}
	if c.Push {
		if c.Bound != nil {
			c.Bound.Detach(c.Conn)
		}
		c.Bound = s
		s.Attach(c.Conn)
	}
	e.listenersMu.RLock()
	added := e.added
	e.listenersMu.RUnlock()
	for _, fn := range added {
		fn(s)
	}
}

// errConnectionTypes answers a handshake whose supportedConnectionTypes
// has none of the server's: the spec requires a failure (CometD accepts it,
// Faye refuses it with 301). Handshaking again with the same list cannot
// succeed, hence reconnect "none".
var errConnectionTypes = &bayeux.Error{Code: 301, Message: "connection_types_unsupported", Reconnect: bayeux.ReconnectNone}

// commonConnectionType reports whether a handshake's
// supportedConnectionTypes names a type the server offers. A missing list
// (Dojo 1.7 sends none) is accepted, as CometD does; an empty one names
// none. Faye's "cross-origin-long-polling" is long-polling with CORS, which
// the long-polling transport serves.
func (e *Engine) commonConnectionType(client []string) bool {
	if client == nil {
		return true
	}
	for _, t := range client {
		if t == "cross-origin-long-polling" {
			t = "long-polling"
		}
		if slices.Contains(e.cfg.ConnectionTypes, t) {
			return true
		}
	}
	return false
}

var unknownConnect = &bayeux.Advice{Reconnect: bayeux.ReconnectHandshake, Interval: 0, Timeout: -1, MaxInterval: -1}

func (e *Engine) connect(x *Exchange) {
	m, r, s, c := x.Request, x.Reply, x.Session, x.Client
	if s == nil {
		r.Fail(bayeux.ErrSessionUnknown)
		a := *unknownConnect
		r.Advice = &a
		return
	}
	hold := e.cfg.Timeout
	s.mu.Lock()
	first := s.state == StateHandshaken
	if first {
		s.state = StateConnected
	}
	s.transport = c.Transport
	s.deliverOnly = e.cfg.MetaConnectDeliverOnly || s.ack != nil || c.DeliverOnly
	if a := m.Advice; a != nil {
		// A client may ask for a shorter hold (timeout 0: answer now),
		// never a longer one: a hold pins a request and keeps the session
		// from expiring.
		if a.Timeout >= 0 && a.Timeout < hold.Milliseconds() {
			hold = time.Duration(a.Timeout) * time.Millisecond
		}
		// A client may ask for a longer pause between connects, which
		// also delays its expiry, but no longer than the server lets a
		// session go without a connect: the larger of interval and
		// maxInterval. The reply advises the interval honoured.
		if a.Interval >= 0 {
			s.interval = min(a.Interval, max(e.cfg.Interval, e.cfg.MaxInterval).Milliseconds())
		}
	}
	if s.ack != nil {
		if id, ok := ackID(m.Ext); ok {
			if lost := s.ack.acknowledge(id); len(lost) > 0 {
				s.queue.PushFront(lost)
				hold = 0
			}
		}
	}
	if first || s.queue.Len() > 0 && (s.deliverOnly || !c.Push) {
		hold = 0
	}
	interval := e.cfg.Interval.Milliseconds()
	if s.interval >= 0 {
		interval = s.interval
	}
	s.mu.Unlock()
	if m.Advice != nil {
		r.Advice = &bayeux.Advice{Reconnect: bayeux.ReconnectRetry, Interval: interval, Timeout: e.cfg.Timeout.Milliseconds(), MaxInterval: -1}
	}
	x.Hold = hold
}

// subscribe handles /meta/subscribe. A message naming several channels is
// checked whole before anything is subscribed: an invalid name, more than
// MaxSubscribeChannels names, or more new subscriptions than the session
// has room for under MaxSubscriptions refuses it and subscribes nothing.
// Then each channel passes the policy in turn; a denial ends the message
// there, and the channels before it stay subscribed (the reply names the
// first denial, as CometD's does).
func (e *Engine) subscribe(ctx context.Context, x *Exchange) {
	m, r, s := x.Request, x.Reply, x.Session
	r.Subscription = m.Subscription
	if s == nil {
		r.Fail(bayeux.ErrSessionUnknown)
		return
	}
	raws, perr := m.Subscriptions()
	if perr != nil {
		r.Fail(perr)
		return
	}
	lim := e.limits.Load()
	if len(raws) > lim.MaxSubscribeChannels {
		e.refuseSubscribe(s, r, errChannelsPerSubscribe, len(raws))
		return
	}
	names := make([]string, 0, len(raws))
	for _, raw := range raws {
		name, _, ok := bayeux.ParseChannel(raw)
		if !ok {
			r.Fail(bayeux.ErrSubscriptionInvalid)
			return
		}
		if bayeux.KindOf(name) == bayeux.KindService {
			continue // a no-op, as in CometD: service messages are never broadcast
		}
		names = append(names, name)
	}
	if n := s.subscriptionsAfter(names); n > lim.MaxSubscriptions {
		e.refuseSubscribe(s, r, errSubscriptionsPerSession, n)
		return
	}
	var fresh []string // subscribed by this message, to undo on a limit
	first := false     // a channel got its first local subscriber
	for _, name := range names {
		if !e.channels.exists(name) {
			if err := e.policy.CanCreate(ctx, s, name, m); err != nil {
				r.Fail(e.denial(err, bayeux.ErrCreateDenied, "create"))
				return
			}
		}
		if err := e.policy.CanSubscribe(ctx, s, name, m); err != nil {
			r.Fail(e.denial(err, bayeux.ErrSubscribeDenied, "subscribe"))
			return
		}
		isNew, err := s.addSub(name, lim.MaxSubscriptions)
		if err == errSubscriptionsPerSession {
			// Another request of the session took the room meanwhile.
			for _, ch := range fresh {
				s.removeSub(ch)
				e.unsubscribe(s, ch)
			}
			e.refuseSubscribe(s, r, err, lim.MaxSubscriptions+1)
			return
		}
		if err != nil {
			r.Fail(err)
			return
		}
		if isNew {
			fresh = append(fresh, name)
		}
		added, n := e.channels.subscribe(name, s)
		if added {
			e.notifySubscribed(s, name, n)
			first = first || n == 1
		}
		if s.Closed() { // removed meanwhile: do not leave it behind
			e.unsubscribe(s, name)
			r.Fail(errSubscribeFailed)
			return
		}
	}
	if first && e.broker != nil {
		// The other nodes send this channel's messages here once the
		// broker's subscription is in effect: reply after that.
		if err := e.broker.Sync(ctx); err != nil {
			// Usually the broker is reconnecting: the subscription takes
			// effect when it is back, and the broker counts the outage.
			e.log.Debug("subscription not yet in effect on the broker", "session", s.id, "err", err)
		}
	}
}

// Errors of a subscribe refused by a limit.
var (
	errSubscriptionsPerSession = &bayeux.Error{Code: 403, Args: "per_session", Message: "subscription_limit"}
	errChannelsPerSubscribe    = &bayeux.Error{Code: 403, Args: "per_message", Message: "subscription_limit"}
)

// refuseSubscribe fails reply r with limit error err, counts it and logs
// it; n is the count that went over the limit.
func (e *Engine) refuseSubscribe(s *Session, r *bayeux.Message, err *bayeux.Error, n int) {
	e.stats.SubscribeLimited.Add(1)
	e.log.Debug("subscribe refused by a limit", "session", s.id, "limit", err.Args, "count", n)
	r.Fail(err)
}

var errSubscribeFailed = &bayeux.Error{Code: 403, Message: "subscribe_failed"}

func (e *Engine) unsubscribeMeta(x *Exchange) {
	m, r, s := x.Request, x.Reply, x.Session
	r.Subscription = m.Subscription
	if s == nil {
		r.Fail(bayeux.ErrSessionUnknown)
		return
	}
	names, perr := m.Subscriptions()
	if perr != nil {
		r.Fail(perr)
		return
	}
	for _, raw := range names {
		name, _, ok := bayeux.ParseChannel(raw)
		if !ok {
			r.Fail(bayeux.ErrSubscriptionInvalid)
			return
		}
		switch bayeux.KindOf(name) {
		case bayeux.KindMeta:
			r.Fail(bayeux.ErrUnsubscribeFailed)
			return
		case bayeux.KindService:
			continue
		}
		if !e.channels.exists(name) {
			r.Fail(bayeux.ErrChannelMissing)
			return
		}
		s.removeSub(name)
		e.unsubscribe(s, name)
	}
}

// unsubscribe removes s from channel name and tells the listeners.
func (e *Engine) unsubscribe(s *Session, name string) {
	if was, n := e.channels.unsubscribe(name, s); was {
		e.listenersMu.RLock()
		ls := e.subs
		e.listenersMu.RUnlock()
		for _, l := range ls {
			l.Unsubscribed(s, name, n)
		}
	}
}

func (e *Engine) notifySubscribed(s *Session, name string, n int) {
	e.listenersMu.RLock()
	ls := e.subs
	e.listenersMu.RUnlock()
	for _, l := range ls {
		l.Subscribed(s, name, n)
	}
}

func (e *Engine) disconnect(x *Exchange) {
	if x.Session == nil {
		x.Reply.Fail(bayeux.ErrSessionUnknown)
		return
	}
	e.removeSession(x.Session, CloseDisconnect, nil)
}

type exchangeKey struct{}

// ClientFrom returns the transport side of the request being handled, for
// policies and publish handlers (e.g. to forward selected HTTP headers), or
// nil outside a request.
func ClientFrom(ctx context.Context) *Client {
	if x := ExchangeFrom(ctx); x != nil {
		return x.Client
	}
	return nil
}

// ExchangeFrom returns the exchange being handled, for policies and publish
// handlers, or nil outside a request.
func ExchangeFrom(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return x
}
