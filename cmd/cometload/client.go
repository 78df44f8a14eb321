package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one Bayeux session of the load, over one transport.
type Client interface {
	// Open handshakes, makes the first connect and starts the connect
	// loop, which follows the server's advice until Close.
	Open(ctx context.Context) error
	// Subscribe subscribes to channel and waits for the reply. The
	// subscription is renewed after a re-handshake.
	Subscribe(ctx context.Context, channel string) error
	// Publish sends one message per data item to channel, in one batch,
	// without waiting for the acknowledgements; they are reported to the
	// client's ack callback.
	Publish(ctx context.Context, channel string, data [][]byte) error
	// Call publishes data to a service channel and waits for the reply
	// with the same id (a remote call).
	Call(ctx context.Context, channel string, data []byte) error
	// Close disconnects (best effort) and releases the connection.
	Close(ctx context.Context)
}

// env is what every client of a run shares.
type env struct {
	url       string   // http(s)://host:port/path, or grpc://host:port
	urls      []string // subscribers' endpoints: client i uses urls[i%len(urls)]
	pubURLs   []string // publishers' endpoints
	transport string   // websocket, long-polling or grpc
	timeout   time.Duration
	stats     *Stats
	ws        *wsShared
	lp        *lpShared
	grpc      *grpcShared
}

// subURL returns the endpoint of the i-th subscriber: the -url list in
// turn.
func (e *env) subURL(i int) string {
	if len(e.urls) == 0 {
		return e.url
	}
	return e.urls[i%len(e.urls)]
}

// pubURL returns the endpoint of the i-th publisher: the -pub-url list in
// turn, or the first -url.
func (e *env) pubURL(i int) string {
	if len(e.pubURLs) == 0 {
		return e.url
	}
	return e.pubURLs[i%len(e.pubURLs)]
}

// clientOpts describes one client.
type clientOpts struct {
	index int
	url   string                    // endpoint (http(s)://); "" is the run's first -url
	recv  *receiver                 // accounts for delivered payloads; may be nil
	onAck func(ok bool, err string) // publish acknowledgements; may be nil
	// Websocket only, both may be nil:
	gate  *readGate // lets the scenario stop the client's reader
	ended *endNote  // records how the session or connection ended early
}

func (e *env) newClient(o clientOpts) Client {
	if o.url == "" {
		o.url = e.url
	}
	switch e.transport {
	case "long-polling":
		return newLPClient(e, o)
	case "grpc":
		return newGRPCClient(e)
	}
	return newWSClient(e, o)
}

// endNote records the signs that a client's session or connection ended
// before the tool closed it: a failed connect, advice not to reconnect,
// its connection closing. Its methods are safe for concurrent use, and
// those of a nil note do nothing.
type endNote struct {
	mu      sync.Mutex // guards at, reasons
	at      time.Time  // of the first sign; zero while there is none
	reasons []string   // the first few distinct signs, in order
}

const maxEndReasons = 3

// note records one sign.
func (n *endNote) note(reason string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.at.IsZero() {
		n.at = time.Now()
	}
	if len(n.reasons) < maxEndReasons && !slices.Contains(n.reasons, reason) {
		n.reasons = append(n.reasons, reason)
	}
}

// get returns when the first sign came (zero if none did) and the signs,
// joined by "; ".
func (n *endNote) get() (at time.Time, reasons string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.at, strings.Join(n.reasons, "; ")
}

// last returns the latest sign recorded, or "".
func (n *endNote) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.reasons) == 0 {
		return ""
	}
	return n.reasons[len(n.reasons)-1]
}

// errClosed is returned by requests on a client whose connection is gone.
var errClosed = errors.New("connection closed")

// replyError turns an unsuccessful reply into an error.
func replyError(m *wireMsg) error {
	if m.ok() {
		return nil
	}
	return fmt.Errorf("%s failed: %q", m.Channel, m.Error)
}

// session is the transport-independent state of a client: its Bayeux
// identity, the requests waiting for replies, its subscriptions.
type session struct {
	env   *env
	opts  clientOpts
	ids   atomic.Uint64
	batch []wireMsg // decode buffer; used by one goroutine at a time under dmu
	dmu   sync.Mutex

	mu       sync.Mutex
	clientID string
	subs     []string
	pending  map[string]*waiter
	timeout  time.Duration // the server's advised connect timeout
	interval time.Duration // the server's advised connect interval
}

// waiter is a request waiting for its reply.
type waiter struct {
	ch       chan wireMsg
	wantData bool // a remote call: wait for the reply with data, not the ack
}

func (s *session) nextID() string { return strconv.FormatUint(s.ids.Add(1), 10) }

func (s *session) id() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientID
}

func (s *session) register(id string, wantData bool) *waiter {
	w := &waiter{ch: make(chan wireMsg, 1), wantData: wantData}
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[string]*waiter{}
	}
	s.pending[id] = w
	s.mu.Unlock()
	return w
}

func (s *session) unregister(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// takeWaiter returns and removes the waiter m completes, if any.
func (s *session) takeWaiter(m *wireMsg) *waiter {
	if m.ID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.pending[string(m.ID)]
	if w == nil {
		return nil
	}
	switch {
	case w.wantData && bool(m.Data) && m.Channel != "" && m.Channel[0] == '/':
		// the remote call's answer
	case m.isReply() && (!w.wantData || !m.ok()):
		// a meta reply, or a failed call's acknowledgement
	default:
		return nil // a delivery that reuses the id, or a call's ack
	}
	delete(s.pending, string(m.ID))
	return w
}

// adviceUpdate applies a reply's advice.
func (s *session) adviceUpdate(a *advice) {
	if a == nil {
		return
	}
	s.mu.Lock()
	if a.Timeout != nil {
		s.timeout = time.Duration(*a.Timeout) * time.Millisecond
	}
	if a.Interval != nil {
		s.interval = time.Duration(*a.Interval) * time.Millisecond
	}
	s.mu.Unlock()
}

func (s *session) advised() (timeout, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeout, s.interval
}

// dispatch handles one frame or response body received at now (Unix ns):
// it accounts for delivered payloads, completes waiting requests, reports
// publish acks, and returns the /meta/connect replies that no request
// waits for (the connect loop's).
func (s *session) dispatch(b []byte, now int64) (connects []wireMsg) {
	if s.opts.recv != nil {
		s.opts.recv.frame(b, now)
	}
	if !needsDecode(b) {
		return nil
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	msgs, err := decodeBatch(b, s.batch)
	s.batch = msgs[:0]
	if err != nil {
		s.env.stats.errs.add("bad_frame", err.Error())
		return nil
	}
	for i := range msgs {
		m := &msgs[i]
		if w := s.takeWaiter(m); w != nil {
			w.ch <- *m
			continue
		}
		switch {
		case m.Channel == "/meta/connect":
			connects = append(connects, *m)
		case !m.isReply() || len(m.Channel) >= 6 && m.Channel[:6] == "/meta/":
			// an event (already accounted for), or a late meta reply
		case bool(m.Data):
			// a late remote-call answer
		default:
			if s.opts.onAck != nil {
				s.opts.onAck(m.ok(), m.Error)
			}
		}
	}
	return connects
}

// wait waits for w's reply, the context's end or done's closing.
func (s *session) wait(ctx context.Context, id string, w *waiter, done <-chan struct{}) (wireMsg, error) {
	select {
	case m := <-w.ch:
		return m, nil
	case <-ctx.Done():
		s.unregister(id)
		return wireMsg{}, ctx.Err()
	case <-done:
		s.unregister(id)
		return wireMsg{}, errClosed
	}
}

// subscribed records a subscription to renew after a re-handshake.
func (s *session) subscribed(channel string) {
	s.mu.Lock()
	s.subs = append(s.subs, channel)
	s.mu.Unlock()
}

func (s *session) subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.subs...)
}

// receiver accounts for the payloads one client receives: how many, which
// came out of order or twice, and their latency.
type receiver struct {
	stats *Stats
	shard *latencyShard
	base  int        // index of the first publisher this receiver expects
	group *slowGroup // also accounts to this group (slow scenario); may be nil

	mu      sync.Mutex
	last    []int64 // last sequence seen from publisher base+i
	got     int64
	dups    int64 // sequence not above the last one seen (duplicate or reordered)
	foreign int64 // payloads of a publisher outside [base, base+len(last))
	// With a group: when the last payload arrived and the longest time
	// between two (or between the group's start and the first), Unix ns.
	lastAt, maxGap int64
}

func newReceiver(st *Stats, index, base, publishers int) *receiver {
	return &receiver{stats: st, shard: st.shard(index), base: base, last: make([]int64, publishers)}
}

// frame scans b for payloads received at now (Unix ns).
func (r *receiver) frame(b []byte, now int64) {
	start, end := r.stats.window()
	var sc payloadScanner
	sc.reset(b)
	var locked *latencyShard
	n := int64(0)
	r.mu.Lock()
	g := r.group
	if g != nil {
		g.mu.Lock()
	}
	for {
		sent, seq, pub, ok := sc.next()
		if !ok {
			break
		}
		n++
		if g != nil {
			g.recordLocked(now, sent, sent >= start && sent < end)
		}
		if slot := pub - r.base; slot >= 0 && slot < len(r.last) {
			if seq <= r.last[slot] {
				r.dups++
			} else {
				r.last[slot] = seq
			}
		} else {
			r.foreign++
		}
		if sent >= start && sent < end {
			if locked == nil {
				locked = r.shard
				locked.mu.Lock()
			}
			locked.h.record(now - sent)
		}
	}
	r.got += n
	if g != nil {
		g.mu.Unlock()
		if n > 0 {
			r.gapLocked(now, g.t0.Load())
		}
	}
	r.mu.Unlock()
	if locked != nil {
		locked.mu.Unlock()
	}
	if n > 0 {
		r.stats.received.Add(n)
		if now >= start && now < end {
			r.stats.inWindow.Add(n)
		}
	}
}

// gapLocked accounts for a delivery at now (Unix ns) in the longest gap
// between deliveries, counting from t0; the caller holds r.mu.
func (r *receiver) gapLocked(now, t0 int64) {
	if t0 == 0 || now < t0 {
		return // before time 0
	}
	if r.lastAt == 0 {
		r.lastAt = t0
	}
	r.maxGap = max(r.maxGap, now-r.lastAt)
	r.lastAt = max(r.lastAt, now)
}

// gapUntil returns the longest gap between deliveries, the time from the
// last delivery to until included (Unix ns), counting from t0.
func (r *receiver) gapUntil(until, t0 int64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.lastAt
	if last == 0 {
		last = t0
	}
	return time.Duration(max(r.maxGap, until-last))
}

// counts returns what the receiver has seen so far.
func (r *receiver) counts() (got, dups, foreign int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got, r.dups, r.foreign
}
