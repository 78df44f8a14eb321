package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
)

// SetPlugins makes set the engine's plugins (nil: none) and returns the
// previous set, which the caller retires (plugins.Set.Retire) once it is
// swapped out: messages under way finish with the set they started with,
// the next ones use set. Sessions, subscriptions and queues are
// untouched. Safe for concurrent use.
func (e *Engine) SetPlugins(set *plugins.Set) *plugins.Set {
	if set.Empty() {
		set = nil
	}
	return e.plugins.Swap(set)
}

// Plugins returns the engine's current plugin set, or nil.
func (e *Engine) Plugins() *plugins.Set { return e.plugins.Load() }

// acquirePlugins returns the current plugin set marked in use (Release it),
// or nil when there is none.
func (e *Engine) acquirePlugins() *plugins.Set {
	for {
		p := e.plugins.Load()
		if p == nil || p.Acquire() {
			return p
		}
	}
}

// pluginClient describes s for plugins; a nil s is the server.
func (s *Session) pluginClient() plugins.Client {
	if s == nil {
		return plugins.Client{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return plugins.Client{ID: s.id, User: s.user, Roles: s.roles, Transport: s.transport, RemoteAddr: s.remote}
}

// filterIn runs a message through its channel's inbound filters, once,
// before the publish handlers and fan-out; a rewrite replaces m's data and
// ext for everything after.
func (e *Engine) filterIn(ctx context.Context, src plugins.Source, s *Session, route *plugins.Route, m *bayeux.Message) *bayeux.Error {
	p := e.acquirePlugins()
	if p == nil {
		return nil // removed meanwhile
	}
	defer p.Release()
	if cur := p.Route(m.Channel); cur != route {
		route = cur // swapped meanwhile: the new configuration's
		if route == nil || len(route.In) == 0 {
			return nil
		}
	}
	pm := plugins.Message{Channel: m.Channel, ID: m.ID, Data: m.Data, Ext: m.Ext, Direction: plugins.Inbound, Source: src, Client: s.pluginClient()}
	if r := route.In.Run(ctx, &pm, e.log); r != nil {
		e.stats.FilteredIn.Add(1)
		return rejection(r)
	}
	m.Data, m.Ext = pm.Data, pm.Ext
	return nil
}

// rejection turns a plugin's refusal into the Bayeux error to send.
func rejection(r *plugins.Rejection) *bayeux.Error {
	return &bayeux.Error{Code: r.BayeuxCode(), Message: r.Reason}
}

// fanoutThrough queues b, or what the outbound filters make of it, for
// each of subs but from (when the publisher must not get its own
// broadcasts); it returns how many got it. A delivery a filter rejects is
// dropped for that session alone and counted.
func (e *Engine) fanoutThrough(subs []*Session, from *Session, b []byte, m *bayeux.Message, out plugins.Chain) int {
	p := e.acquirePlugins()
	if p != nil {
		defer p.Release()
	}
	ctx := context.Background()
	n := 0
	pm := new(plugins.Message)
	for _, s := range subs {
		if s == from && e.cfg.NoBroadcastToPublisher {
			continue
		}
		if eb, ok := e.filterOut(ctx, s, b, m, out, pm); ok {
			s.enqueue(eb, false)
			n++
		}
	}
	return n
}

// filterOut is the outbound point of one delivery of m (encoded as b) to
// s: it passes the outbound filters and returns the bytes to queue (b
// itself unless a filter rewrote the message), or false when a filter
// rejected it. pm is scratch space.
func (e *Engine) filterOut(ctx context.Context, s *Session, b []byte, m *bayeux.Message, out plugins.Chain, pm *plugins.Message) ([]byte, bool) {
	*pm = plugins.Message{Channel: m.Channel, ID: m.ID, Data: m.Data, Ext: m.Ext, Direction: plugins.Outbound, Client: s.pluginClient()}
	if r := out.Run(ctx, pm, e.log); r != nil {
		e.stats.FilteredOut.Add(1)
		if e.log.Enabled(ctx, slog.LevelDebug) {
			e.log.Debug("delivery dropped by a filter", "session", s.id, "channel", m.Channel, "reason", r.Reason)
		}
		return nil, false
	}
	if sameBytes(pm.Data, m.Data) && sameBytes(pm.Ext, m.Ext) {
		return b, true
	}
	c := *m
	c.Data, c.Ext = pm.Data, pm.Ext
	return bayeux.AppendMessage(make([]byte, 0, len(b)+len(pm.Data)-len(m.Data)+len(pm.Ext)), &c), true
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// deliver is the outbound point of a message for s alone (Deliver): the
// outbound filters of its channel, then encoding. It reports whether the
// message was queued.
func (e *Engine) deliver(s *Session, m *bayeux.Message) bool {
	e.send(m)
	// Looked up first without a use count: most channels have no filter.
	if route := e.plugins.Load().Route(m.Channel); route != nil && len(route.Out) > 0 {
		route = nil
		if p := e.acquirePlugins(); p != nil {
			defer p.Release()
			route = p.Route(m.Channel) // the set that is now current
		}
		if route != nil && len(route.Out) > 0 {
			pm := new(plugins.Message)
			b, ok := e.filterOut(context.Background(), s, nil, m, route.Out, pm)
			if !ok {
				return false
			}
			if b != nil { // rewritten
				s.enqueue(b, true)
				return true
			}
		}
	}
	s.enqueue(bayeux.AppendMessage(nil, m), true)
	return true
}

// pluginPolicy asks the current plugin set's authenticators (in
// CanHandshake) and policies. It sits after DefaultPolicy and before the
// policies of WithPolicy.
type pluginPolicy struct{ e *Engine }

func (pp pluginPolicy) request(ctx context.Context, op plugins.Operation, s *Session, ch string, m *bayeux.Message) *plugins.Request {
	r := &plugins.Request{Op: op, Channel: ch, Client: s.pluginClient()}
	if m != nil {
		r.Data, r.Ext = m.Data, m.Ext
	}
	if c := ClientFrom(ctx); c != nil && s != nil {
		r.Header = c.Header
		if r.Client.Transport == "" {
			r.Client.Transport = c.Transport
		}
	}
	return r
}

func (pp pluginPolicy) authorize(ctx context.Context, op plugins.Operation, s *Session, ch string, m *bayeux.Message) error {
	if s == nil {
		return nil // the server itself (the control API), authenticated already
	}
	p := pp.e.acquirePlugins()
	if p == nil {
		return nil
	}
	defer p.Release()
	if len(p.Policies) == 0 {
		return nil
	}
	r := pp.request(ctx, op, s, ch, m)
	for _, pol := range p.Policies {
		if err := pol.Authorize(ctx, r); err != nil {
			return pp.e.pluginDenial(err, pol.Name, op)
		}
	}
	return nil
}

// pluginDenial maps a plugin policy's error to what the engine sends: a
// Rejection as its own Bayeux error, a plugins.ErrDenied as the
// operation's standard error, anything else logged, then the standard
// error.
func (e *Engine) pluginDenial(err error, name string, op plugins.Operation) error {
	if r, ok := plugins.AsRejection(err); ok {
		e.stats.PolicyDenied.Add(1)
		return rejection(r)
	}
	e.stats.PolicyDenied.Add(1)
	if !errors.Is(err, plugins.ErrDenied) {
		e.log.Warn("plugin policy failed", "policy", name, "op", op.String(), "err", err)
		return ErrDenied
	}
	return fmt.Errorf("%w: %w", ErrDenied, err) // keeps a DenyReason for denial
}

// CanHandshake runs the authenticators, then the policies.
func (pp pluginPolicy) CanHandshake(ctx context.Context, s *Session, m *bayeux.Message) error {
	p := pp.e.acquirePlugins()
	if p == nil {
		return nil
	}
	defer p.Release()
	if len(p.Authenticators) > 0 {
		if err := pp.e.authenticate(ctx, p, s, m); err != nil {
			return err
		}
	}
	return pp.authorize(ctx, plugins.OpHandshake, s, "", m)
}

// Errors of handshakes the authenticators refuse.
var (
	errAuthRequired    = &bayeux.Error{Code: 401, Message: "authentication_required", Reconnect: bayeux.ReconnectNone}
	errAuthUnavailable = &bayeux.Error{Code: 503, Message: "authentication_unavailable", Reconnect: bayeux.ReconnectHandshake}
)

// authenticate asks p's authenticators in turn until one finds
// credentials, and binds the identity it returns to s.
func (e *Engine) authenticate(ctx context.Context, p *plugins.Set, s *Session, m *bayeux.Message) error {
	r := pluginPolicy{e}.request(ctx, plugins.OpHandshake, s, "", m)
	for _, a := range p.Authenticators {
		id, err := a.Authenticate(ctx, r)
		switch {
		case errors.Is(err, plugins.ErrNoCredentials):
			continue
		case err != nil:
			e.stats.AuthFailed.Add(1)
			if rj, ok := plugins.AsRejection(err); ok {
				be := rejection(rj)
				be.Reconnect = bayeux.ReconnectNone
				return be
			}
			e.log.Warn("authenticator failed", "authenticator", a.Name, "err", err)
			return errAuthUnavailable
		case id == nil:
			continue
		}
		s.SetUser(id.User)
		s.mu.Lock()
		s.roles = id.Roles
		if !id.Expires.IsZero() {
			s.authExpires = id.Expires.UnixNano()
		}
		s.mu.Unlock()
		return nil
	}
	if p.AllowAnonymous {
		return nil
	}
	e.stats.AuthFailed.Add(1)
	return errAuthRequired
}

func (pp pluginPolicy) CanCreate(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	return pp.authorize(ctx, plugins.OpCreate, s, ch, m)
}

func (pp pluginPolicy) CanSubscribe(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	return pp.authorize(ctx, plugins.OpSubscribe, s, ch, m)
}

func (pp pluginPolicy) CanPublish(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	return pp.authorize(ctx, plugins.OpPublish, s, ch, m)
}

// Roles returns the roles the handshake's authenticator gave the session.
func (s *Session) Roles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roles
}

// credentialsExpired reports whether the credentials the session
// handshook with have expired.
func (s *Session) credentialsExpired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authExpires != 0 && s.state != StateClosed && now.UnixNano() > s.authExpires
}

// pluginListeners tells the current plugin set's listeners of session and
// subscription events; it is registered on every engine.
type pluginListeners struct{ e *Engine }

func (pl pluginListeners) added(s *Session) {
	if p := pl.e.acquirePlugins(); p != nil {
		defer p.Release()
		if len(p.Sessions) > 0 {
			c := s.pluginClient()
			for _, l := range p.Sessions {
				l.SessionAdded(c)
			}
		}
	}
}

func (pl pluginListeners) removed(s *Session, why CloseReason) {
	if p := pl.e.acquirePlugins(); p != nil {
		defer p.Release()
		if len(p.Sessions) > 0 {
			c := s.pluginClient()
			for _, l := range p.Sessions {
				l.SessionRemoved(c, why.String())
			}
		}
	}
}

func (pl pluginListeners) Subscribed(s *Session, ch string, n int) {
	if p := pl.e.acquirePlugins(); p != nil {
		defer p.Release()
		if len(p.Subscriptions) > 0 {
			c := s.pluginClient()
			for _, l := range p.Subscriptions {
				l.Subscribed(c, ch, n)
			}
		}
	}
}

func (pl pluginListeners) Unsubscribed(s *Session, ch string, n int) {
	if p := pl.e.acquirePlugins(); p != nil {
		defer p.Release()
		if len(p.Subscriptions) > 0 {
			c := s.pluginClient()
			for _, l := range p.Subscriptions {
				l.Unsubscribed(c, ch, n)
			}
		}
	}
}

func (pl pluginListeners) queueMaxed(s *Session, queued int) {
	if p := pl.e.acquirePlugins(); p != nil {
		defer p.Release()
		if len(p.Queues) > 0 {
			c := s.pluginClient()
			for _, l := range p.Queues {
				l.QueueMaxed(c, queued)
			}
		}
	}
}
