package engine

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/internal/queue"
)

// State is the lifecycle state of a Session.
type State uint8

// Session states: a session is handshaken until its first successful
// connect, then connected until it is closed.
const (
	StateHandshaken State = iota
	StateConnected
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateHandshaken:
		return "handshaken"
	case StateConnected:
		return "connected"
	}
	return "closed"
}

// CloseReason says why a session ended.
type CloseReason uint8

// Close reasons.
const (
	CloseDisconnect CloseReason = iota + 1 // the client sent /meta/disconnect
	CloseExpired                           // no connect within interval+maxInterval
	CloseSlow                              // its queue overflowed
	CloseServer                            // the server (an API call, a policy) disconnected it
	CloseShutdown                          // the gateway is shutting down
)

func (r CloseReason) String() string {
	switch r {
	case CloseDisconnect:
		return "disconnect"
	case CloseExpired:
		return "expired"
	case CloseSlow:
		return "slow"
	case CloseServer:
		return "server"
	case CloseShutdown:
		return "shutdown"
	}
	return "none"
}

// Conn is implemented by a push transport (websocket) attached to a
// session.
type Conn interface {
	// Wake tells the connection that the session has something for it:
	// queued messages, a held connect that is due, or its end. It is called
	// without engine locks held and must not block; the connection answers
	// by calling Session.Pull (usually from another goroutine). urgent is
	// true when waiting gains nothing: the message is for this session
	// alone (Deliver), or the session ends; broadcasts are not urgent, and
	// the connection may wait a little so that several share a write.
	Wake(urgent bool)
}

// holdEnd says why a held connect ended.
type holdEnd uint8

const (
	holdActive holdEnd = iota
	holdTimeout
	holdMessages
	holdSuperseded
	holdClosed
	holdGone // the client went away (HTTP request cancelled)
)

// Hold is a /meta/connect that a transport is holding open.
type Hold struct {
	x    *Exchange
	wake chan struct{} // 1-buffered, signalled when the hold should end; nil for push transports
	end  holdEnd       // guarded by the session's mu
	due  time.Time     // when queued messages ended it (Park holds only); guarded by mu
}

// Wake returns a channel that receives when the hold should end early. It
// is nil for a hold made with ParkPush.
func (h *Hold) Wake() <-chan struct{} { return h.wake }

// Due returns when a queued message ended the hold, or the zero time if
// it ended otherwise (timeout, session end). Valid after Unpark; only
// holds made with Park record it.
func (h *Hold) Due() time.Time { return h.due }

// Session is one Bayeux client session. Its methods are safe for
// concurrent use.
type Session struct {
	id      string
	e       *Engine
	created time.Time
	remote  string

	mu sync.Mutex // guards every field below
	// state and why it closed
	state  State
	reason CloseReason
	// queued encoded messages, shared read-only
	queue queue.Queue
	// subscribed channel names; a slice, since sessions rarely hold more
	// than a few and a map costs hundreds of bytes per idle session
	subs []string
	// push connection, if any
	conn Conn
	// held connect, if any
	held *Hold
	// when the session expires if no connect is held
	expireAt time.Time
	// >0 while one of its own requests is being processed
	batching int
	// events travel only with connect replies
	deliverOnly bool
	// acknowledged-delivery state, nil when the extension is off
	ack *ackState
	// client-requested advice interval (ms), -1 for none
	interval int64
	// connection type of the last connect
	transport string
	// BAYEUX_BROWSER value it belongs to, "" if none, and a second one
	// taken before its first connect (see fromBrowser)
	browser, alias string
	user           string
	roles          []string // from the handshake's authenticator
	authExpires    int64    // when its credentials expire (UnixNano), 0 never
	attrs          map[string]any
}

func newSession(e *Engine, c *Client) *Session {
	now := time.Now()
	return &Session{
		id:          e.idPrefix + newID(20),
		e:           e,
		created:     now,
		browser:     c.Browser,
		remote:      c.RemoteAddr,
		transport:   c.Transport,
		deliverOnly: e.cfg.MetaConnectDeliverOnly,
		interval:    -1,
		expireAt:    now.Add(e.cfg.Interval + e.cfg.MaxInterval),
	}
}

// ID returns the session's clientId.
func (s *Session) ID() string { return s.id }

// Browser returns the BAYEUX_BROWSER cookie value the session belongs to.
func (s *Session) Browser() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.browser
}

// fromBrowser reports whether a request of c may act for the session: it
// carries the session's BAYEUX_BROWSER cookie, or its cookie is new (just
// made for a websocket upgrade, see Client.NewBrowser) and the session has
// not made its first connect yet. The second case exists because clients
// that handshake over HTTP while they open their websocket (Faye does, as
// does any client on a first visit) send both requests without a cookie,
// get two, and keep whichever arrived last: the new one then becomes the
// session's second browser id, accepted as the first is. Once the session
// has connected, no other is taken; before, its clientId is known only to
// whoever handshook.
func (s *Session) fromBrowser(c *Client) bool {
	if c.Browser == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case c.Browser == s.browser || c.Browser == s.alias:
		return true
	case s.state != StateHandshaken || !c.NewBrowser || s.alias != "":
		return false
	}
	s.alias = c.Browser
	return true
}

// RemoteAddr returns the address of the client that handshook.
func (s *Session) RemoteAddr() string { return s.remote }

// Created returns when the session handshook.
func (s *Session) Created() time.Time { return s.created }

// State returns the session's lifecycle state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Held reports whether a connect of the session is held now, waiting for
// messages or its timeout.
func (s *Session) Held() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held != nil
}

// Transport returns the connection type the session last used.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// QueueLen returns how many messages wait to be sent.
func (s *Session) QueueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Len()
}

// Subscriptions returns the channels the session is subscribed to.
func (s *Session) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs)
}

// User returns the user identity bound to the session, or "".
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// SetUser binds the session to a user identity ("" unbinds), so that
// Engine.UserSessions finds it.
func (s *Session) SetUser(user string) {
	s.mu.Lock()
	old := s.user
	s.user = user
	closed := s.state == StateClosed
	s.mu.Unlock()
	if !closed && old != user {
		s.e.bindUser(s, old, user)
	}
}

// Set stores an attribute on the session, for extensions and handlers.
func (s *Session) Set(key string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attrs == nil {
		s.attrs = make(map[string]any)
	}
	s.attrs[key] = value
}

// Get returns an attribute stored with Set, or nil.
func (s *Session) Get(key string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attrs[key]
}

// Disconnect ends the session from the server side: a held connect is
// answered with a /meta/disconnect message and reconnect advice "none".
func (s *Session) Disconnect() {
	m := &bayeux.Message{Channel: bayeux.MetaDisconnect, Reply: true, Successful: true}
	s.e.send(m)
	s.e.removeSession(s, CloseServer, bayeux.AppendMessage(nil, m))
}

// Deliver queues m for this session alone (narrowcast), whatever its
// subscriptions; the engine's Senders see m first, then the outbound
// filters of its channel (which may drop it for this session), then it is
// encoded at once and may be reused after return.
// The reply to a remote call is a Deliver on the request's channel with
// the request's id.
func (s *Session) Deliver(m *bayeux.Message) {
	s.e.deliver(s, m)
}

// DeliverData is Deliver of {channel, data, id}.
func (s *Session) DeliverData(channel string, data json.RawMessage, id string) {
	s.Deliver(&bayeux.Message{Channel: channel, Data: data, ID: id})
}

// enqueue queues an encoded message and wakes whoever should send it (see
// Conn.Wake for urgent). A session whose queue overflows is disconnected as
// slow.
func (s *Session) enqueue(b []byte, urgent bool) {
	s.mu.Lock()
	if s.state == StateClosed {
		s.mu.Unlock()
		return
	}
	lim := s.e.limits.Load()
	if !s.queue.Push(b, lim.MaxQueue, lim.MaxQueueBytes) {
		s.mu.Unlock()
		s.e.stats.Dropped.Add(1)
		s.e.log.Info("session queue full, disconnecting slow client", "session", s.id, "maxQueue", lim.MaxQueue)
		s.e.listenersMu.RLock()
		maxed := s.e.queueMaxed
		s.e.listenersMu.RUnlock()
		for _, fn := range maxed {
			fn(s, lim.MaxQueue)
		}
		s.e.removeSession(s, CloseSlow, nil)
		return
	}
	conn := s.notifyLocked()
	s.mu.Unlock()
	if conn != nil {
		conn.Wake(urgent)
	}
}

// notifyLocked signals a held connect or returns the push connection to
// wake, unless one of the session's own requests is being processed (its
// response will carry the events).
func (s *Session) notifyLocked() Conn {
	if s.batching > 0 {
		return nil
	}
	if s.conn != nil {
		return s.conn
	}
	if s.held != nil && s.queue.Len() > 0 {
		s.endHoldLocked(holdMessages)
	}
	return nil
}

func (s *Session) endHoldLocked(why holdEnd) {
	h := s.held
	if h == nil || h.end != holdActive {
		return
	}
	h.end = why
	if h.wake == nil {
		return // a push transport learns of it through Conn.Wake
	}
	if why == holdMessages {
		h.due = time.Now()
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Attach binds a push connection to the session (websocket); messages are
// then signalled through c.Wake. It replaces any previous connection,
// which is told through Superseded (if it implements it) so that it is
// never left believing it still serves the session.
func (s *Session) Attach(c Conn) {
	s.mu.Lock()
	old := s.conn
	s.conn = c
	if old != nil && old != c && s.held != nil && s.held.wake == nil {
		s.held.end = holdSuperseded // the old connection's held connect
		s.held = nil
	}
	closed := s.state == StateClosed
	pending := s.queue.Len() > 0
	s.mu.Unlock()
	if sc, ok := old.(interface{ Superseded(*Session) }); ok && old != c {
		sc.Superseded(s)
	}
	if pending || closed {
		c.Wake(closed)
	}
}

// attachedTo reports whether c is the session's push connection.
func (s *Session) attachedTo(c Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn == c
}

// Detach unbinds c if it is still the session's connection and drops its
// held connect; the session then expires after maxInterval unless a new
// connection resumes it.
func (s *Session) Detach(c Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c {
		return
	}
	s.conn = nil
	if s.held != nil {
		s.held.end = holdGone
		s.held = nil
	}
	s.extendLocked(time.Now(), s.e.cfg.Interval+s.e.cfg.MaxInterval)
}

// Park holds connect exchange x. A connect already held is superseded: an
// HTTP transport answers it with an error status, a push transport drops
// it. The caller must end the hold with Unpark (HTTP) or let Pull take it
// (push).
func (s *Session) Park(x *Exchange) *Hold {
	return s.park(&Hold{x: x, wake: make(chan struct{}, 1)})
}

// ParkPush holds connect exchange x for a push transport, which is told of
// the hold's end through its Conn and answers it with Pull. Only what the
// reply needs of the request is kept (its channel, its id, and the ext
// fields that ExtKeeper extensions keep), so that an idle session retains
// neither the decoded batch and the frame it came in, nor an ext its
// client made large.
func (s *Session) ParkPush(x *Exchange) *Hold {
	req := x.Request
	slim := *x
	slim.Request = &bayeux.Message{Channel: req.Channel, ID: req.ID, Ext: s.e.keptExt(req.Ext)}
	return s.park(&Hold{x: &slim})
}

func (s *Session) park(h *Hold) *Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		s.endHoldLocked(holdSuperseded)
	}
	s.held = h
	switch {
	case s.state == StateClosed:
		s.endHoldLocked(holdClosed)
	case s.queue.Len() > 0 && s.batching == 0 && (h.wake != nil || s.deliverOnly):
		// Queued messages end a long poll, and a push hold in deliver-only
		// mode; otherwise a push transport sends them on their own while
		// the connect stays held.
		s.endHoldLocked(holdMessages)
	}
	return h
}

// HoldExpired marks h as timed out (push transports call it from a timer)
// and reports whether the connection should be woken to answer it.
func (s *Session) HoldExpired(h *Hold) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != h || h.end != holdActive {
		return false
	}
	h.end = holdTimeout
	return true
}

// Unpark ends hold h for an HTTP transport and reports whether it was
// superseded by a newer connect (the caller then answers with an error
// status instead of a reply). gone tells that the client went away.
func (s *Session) Unpark(h *Hold, gone bool) (superseded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.end == holdSuperseded {
		return true
	}
	if s.held == h {
		s.held = nil
	}
	if h.end == holdActive {
		h.end = holdTimeout
		if gone {
			h.end = holdGone
		}
	}
	if h.end == holdGone {
		s.extendLocked(time.Now(), s.e.cfg.Interval+s.e.cfg.MaxInterval)
	}
	return false
}

// Complete finishes a connect exchange that was answered now or whose hold
// ended: it appends the queued events (at most max of them; 0 means all,
// and a negative max none) to dst and returns dst; the reply is then final and carries the ack batch
// id, the advice the end calls for, and extension fields. Call it right
// before writing the response.
func (s *Session) Complete(x *Exchange, dst [][]byte, max int) [][]byte {
	s.mu.Lock()
	if h := s.held; h != nil && h.x == x {
		s.held = nil
	}
	dst = s.completeLocked(x, dst, max, 0)
	s.mu.Unlock()
	s.e.outgoing(x)
	return dst
}

// RoomForReply is how many events a connect reply may carry in a frame of
// at most max messages (max <= 0: no limit), as Complete counts them: the
// reply takes one place.
func RoomForReply(max int) int {
	switch {
	case max <= 0:
		return 0 // all
	case max == 1:
		return -1 // none
	}
	return max - 1
}

func (s *Session) completeLocked(x *Exchange, dst [][]byte, max, maxBytes int) [][]byte {
	n := len(dst)
	if max >= 0 {
		dst = s.queue.Take(dst, max, maxBytes)
	}
	if s.ack != nil {
		s.ack.sent(x.Reply, dst[n:])
	}
	switch {
	case s.state == StateClosed && s.reason == CloseShutdown:
		// The session dies with this node: a failed connect with advice to
		// re-handshake (clients reject "handshake" on a successful one).
		x.Reply.Fail(errShuttingDown)
		x.Reply.Advice.Interval = 1000
	case s.state == StateClosed:
		x.Reply.Advice = bayeux.NewAdvice(bayeux.ReconnectNone)
	default:
		s.extendLocked(time.Now(), s.e.cfg.Interval+s.e.cfg.MaxInterval)
	}
	return dst
}

// Pull is called by a push transport after Wake. It returns the queued
// events to write (at most max messages and about maxBytes; max <= 0 means
// no count limit) and, when the held connect is due, its exchange, whose
// reply must follow the events. In deliver-only mode (ack extension,
// metaConnectDeliverOnly) events come only together with a connect, or
// after the session has ended. While
// one of the session's requests is being processed, its events wait for
// that request's reply (Take) or the end of the batch, which wakes the
// connection again: an answer never overtakes the reply to its request.
func (s *Session) Pull(dst [][]byte, max, maxBytes int) ([][]byte, *Exchange) {
	s.mu.Lock()
	if s.batching > 0 && s.state == StateClosed {
		// The request that ended the session is being processed: its
		// reply carries the end (Ended), and comes first.
		s.mu.Unlock()
		return dst, nil
	}
	h := s.held
	if h != nil && h.end == holdActive && (s.state == StateClosed || s.deliverOnly && s.queue.Len() > 0) {
		h.end = holdMessages
	}
	if h != nil && h.end != holdActive {
		s.held = nil
		dst = s.completeLocked(h.x, dst, RoomForReply(max), maxBytes)
		s.mu.Unlock()
		s.e.outgoing(h.x)
		return dst, h.x
	}
	// A session that has ended sends what is left, deliver-only or not:
	// no connect will carry it any more.
	if (!s.deliverOnly || s.state == StateClosed) && s.batching == 0 {
		dst = s.queue.Take(dst, max, maxBytes)
	}
	s.mu.Unlock()
	return dst, nil
}

// Ended is called by a push transport replying to the batch that ended
// the session (a /meta/disconnect): it returns what is still queued and
// the connect held from an earlier request, completed, if any. Its reply
// goes before the batch's replies, so that clients see no connect
// outstanding when the disconnect reply arrives.
func (s *Session) Ended(dst [][]byte) ([][]byte, *Exchange) {
	s.mu.Lock()
	h := s.held
	s.held = nil
	if h != nil {
		dst = s.completeLocked(h.x, dst, 0, 0)
	} else {
		dst = s.queue.Take(dst, 0, 0)
	}
	s.mu.Unlock()
	if h == nil {
		return dst, nil
	}
	s.e.outgoing(h.x)
	return dst, h.x
}

// InBatch reports whether one of the session's own requests is being
// processed.
func (s *Session) InBatch() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batching > 0
}

// Take removes queued events for a response that piggybacks them (an HTTP
// reply to the session's own non-connect request). It returns nothing in
// deliver-only mode.
func (s *Session) Take(dst [][]byte, maxBytes int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deliverOnly {
		return dst
	}
	return s.queue.Take(dst, 0, maxBytes)
}

// Closed reports whether the session has ended.
func (s *Session) Closed() bool { return s.State() == StateClosed }

func (s *Session) beginBatch() {
	s.mu.Lock()
	s.batching++
	s.mu.Unlock()
}

// endBatch ends request processing; unless the transport drains the queue
// itself, whoever waits for messages is woken.
func (s *Session) endBatch() {
	s.mu.Lock()
	s.batching--
	var conn Conn
	if s.batching == 0 && s.queue.Len() > 0 {
		conn = s.notifyLocked()
	}
	s.mu.Unlock()
	if conn != nil {
		conn.Wake(true) // what the session's own request left behind
	}
}

// touch pushes expiry to at least now+maxInterval: any message is a sign
// of life.
func (s *Session) touch() {
	s.mu.Lock()
	s.extendLocked(time.Now(), s.e.cfg.MaxInterval)
	s.mu.Unlock()
}

func (s *Session) extendLocked(now time.Time, d time.Duration) {
	if s.interval > 0 {
		d += time.Duration(s.interval) * time.Millisecond
	}
	if t := now.Add(d); t.After(s.expireAt) {
		s.expireAt = t
	}
}

func (s *Session) expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != StateClosed && s.held == nil && now.After(s.expireAt)
}

// close marks the session closed and wakes a held connect or push
// connection; final, if any, is queued in the same critical section so that
// whoever answers the held connect sees both. It reports false if the
// session was already closed.
func (s *Session) close(reason CloseReason, final []byte) bool {
	s.mu.Lock()
	if s.state == StateClosed {
		s.mu.Unlock()
		return false
	}
	if final != nil {
		lim := s.e.limits.Load()
		s.queue.Push(final, max(lim.MaxQueue, s.queue.Len())+1, max(lim.MaxQueueBytes, s.queue.Bytes())+len(final))
	}
	s.state = StateClosed
	s.reason = reason
	s.endHoldLocked(holdClosed)
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.Wake(true)
	}
	return true
}

// CloseReason returns why the session closed, or 0 while it is open.
func (s *Session) CloseReason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *Session) shutdown() { s.e.removeSession(s, CloseShutdown, nil) }

func (s *Session) takeSubscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.subs
	s.subs = nil
	return list
}

// addSub records a subscription to ch and reports whether it is new. It
// fails with errSubscribeFailed once the session is closed, and with
// errSubscriptionsPerSession when ch is new and the session already has
// max subscriptions.
func (s *Session) addSub(ch string, max int) (bool, *bayeux.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == StateClosed:
		return false, errSubscribeFailed
	case slices.Contains(s.subs, ch):
		return false, nil
	case len(s.subs) >= max:
		return false, errSubscriptionsPerSession
	}
	s.subs = append(s.subs, ch)
	return true, nil
}

// subscriptionsAfter returns how many subscriptions the session would have
// once subscribed to names as well (which may repeat, or name channels it
// is already subscribed to).
func (s *Session) subscriptionsAfter(names []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.subs)
	for i, ch := range names {
		if !slices.Contains(s.subs, ch) && !slices.Contains(names[:i], ch) {
			n++
		}
	}
	return n
}

func (s *Session) removeSub(ch string) {
	s.mu.Lock()
	if i := slices.Index(s.subs, ch); i >= 0 {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	s.mu.Unlock()
}
