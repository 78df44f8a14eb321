package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/transport"
	"github.com/nats-io/nats.go"
)

// Relayed polls: a long-polling or callback-polling request that lands on
// a node other than its session's owner is sent to the owner on
// P.n.<owner id>.poll (request/reply) and the owner's answer is written to
// the client by the node it landed on. A held /meta/connect is held on the
// owner; when its client goes away the relaying node publishes the
// request's id on P.n.<owner id>.pollcancel ("c" then the id), which ends
// the hold as if the client had gone from the owner itself; when the
// relaying node shuts down it publishes "w" then the id, and the owner
// answers the connect at once, as if its hold had passed.
//
// Wire format, both ways: the payload, a newline, then a JSON object of
// the other fields (encoding/json never writes a raw newline, and the
// payload may hold some, so the last newline splits them).

// PollServer serves the polling requests other nodes relay to this one
// (transport.Handler).
type PollServer interface {
	ServeRelayed(ctx context.Context, req *transport.RelayRequest, dst []byte) *transport.RelayResponse
}

var _ PollServer = (*transport.Handler)(nil)
var _ transport.Relay = (*Node)(nil)

// RelayStats are the relayed-poll counters of a node, read with atomic
// loads.
type RelayStats struct {
	// Out counts polling requests relayed to their session's owner; In,
	// those served for other nodes.
	Out atomic.Int64
	In  atomic.Int64
	// NoResponders counts relays whose owner was gone (NATS "no
	// responders", or leaving the cluster), Timeouts those that got no
	// answer in time, Unreachable those NATS would not carry (not
	// connected, or another request error): each was answered by the
	// relaying node itself (402 and advice to handshake again).
	NoResponders atomic.Int64
	Timeouts     atomic.Int64
	Unreachable  atomic.Int64
	// Refused counts requests of other nodes refused with 503 because
	// MaxRelayed were being served.
	Refused atomic.Int64
	// Invalid counts malformed relay requests (answered 400) and
	// malformed answers (the client gets 502).
	Invalid atomic.Int64
}

// relayHold ends a relayed connect held on this node: cancel when its
// client went away, wake to answer it now.
type relayHold struct {
	cancel, wake context.CancelFunc
}

// relayState is a node's side of relayed polls.
type relayState struct {
	polls PollServer    // serves relayed requests; nil: none are served
	sem   chan struct{} // one token per relayed request being served
	subs  []*nats.Subscription
	wg    sync.WaitGroup // relayed requests being served
	mu    sync.Mutex     // guards held, closed
	held  map[string]relayHold
	// closed is set once the node stops serving relayed requests.
	closed bool
	stats  RelayStats
}

// statusLeaving answers a relayed request that arrives while the node
// leaves the cluster: the relaying node then processes it itself, as when
// the owner is gone.
const statusLeaving = http.StatusGone

// Bounds of what a relay request may carry (its batch is bounded by the
// owner's MaxRequestBytes, and the whole by NATS's max_payload).
const (
	maxRelayHeaders  = 64
	maxRelayFieldLen = 1024
	maxRelayHold     = 24 * 3600 * 1000 // milliseconds
)

// ServePolls makes the node serve the polling requests other nodes relay
// to it with p. Call it before Start.
func (n *Node) ServePolls(p PollServer) { n.relay.polls = p }

// RelayStats returns the node's relayed-poll counters.
func (n *Node) RelayStats() *RelayStats { return &n.relay.stats }

// serveRelay subscribes to this node's relayed-poll subjects.
func (n *Node) serveRelay() error {
	r := &n.relay
	if r.polls == nil {
		return nil
	}
	r.sem = make(chan struct{}, n.cfg.MaxRelayed)
	r.held = make(map[string]relayHold)
	for kind, cb := range map[string]nats.MsgHandler{"poll": n.relayed, "pollcancel": n.relayCancel} {
		sub, err := n.nc.Subscribe(n.subject("n", n.id, kind), cb)
		if err != nil {
			return fmt.Errorf("cluster: subscribing to relayed polls: %w", err)
		}
		if err := sub.SetPendingLimits(n.cfg.MaxPendingMessages, n.cfg.MaxPendingBytes); err != nil {
			return fmt.Errorf("cluster: relayed polls' pending limits: %w", err)
		}
		r.subs = append(r.subs, sub)
	}
	return nil
}

// stopRelay stops serving relayed requests: it unsubscribes (the other
// nodes then get no responders and tell the clients to handshake again)
// and waits, within ctx, for those being served to be answered (after
// engine.Close, held connects are answered at once with handshake
// advice).
func (n *Node) stopRelay(ctx context.Context) error {
	r := &n.relay
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	for _, sub := range r.subs {
		sub.Unsubscribe()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remote reports whether session clientID is owned by another node.
func (n *Node) Remote(clientID string) bool {
	owner := OwnerOf(clientID)
	return owner != "" && owner != n.id && validID(owner)
}

// relayRequestWire is what a RelayRequest carries besides its messages.
type relayRequestWire struct {
	ID         string              `json:"id,omitempty"` // set for a connect that may be held
	Transport  string              `json:"t"`
	Browser    string              `json:"b,omitempty"`
	NewBrowser bool                `json:"nb,omitempty"`
	RemoteAddr string              `json:"ra,omitempty"`
	Header     map[string][]string `json:"h,omitempty"`
	HTTP2      bool                `json:"h2,omitempty"`
	MaxHold    int64               `json:"hold,omitempty"` // milliseconds
	Deliver    bool                `json:"do,omitempty"`   // DeliverOnly
}

// relayResponseWire is what a RelayResponse carries besides its body.
type relayResponseWire struct {
	Status  int    `json:"s"`
	Browser string `json:"b,omitempty"`
	Held    bool   `json:"held,omitempty"`
}

// Forward sends req to its session's owner and returns the answer; see
// transport.Relay. A connect is waited for its hold plus RequestTimeout,
// anything else for RequestTimeout.
func (n *Node) Forward(ctx context.Context, req *transport.RelayRequest) (*transport.RelayResponse, error) {
	r := &n.relay
	owner := OwnerOf(req.ClientID)
	if !n.Connected() {
		r.stats.Unreachable.Add(1)
		return nil, fmt.Errorf("cluster: relay to node %s: not connected to NATS: %w", owner, transport.ErrOwnerUnreachable)
	}
	w := relayRequestWire{
		Transport: req.Transport, Browser: req.Browser, NewBrowser: req.NewBrowser,
		RemoteAddr: req.RemoteAddr, Header: req.Header, HTTP2: req.HTTP2,
		MaxHold: req.MaxHold.Milliseconds(), Deliver: req.DeliverOnly,
	}
	if req.MaxHold > 0 {
		w.ID = newRequestID()
	}
	meta, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("cluster: relay to node %s: %w", owner, err)
	}
	data := make([]byte, 0, len(req.Messages)+1+len(meta))
	data = append(append(append(data, req.Messages...), '\n'), meta...)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout+req.MaxHold)
	defer cancel()
	if w.ID != "" && req.Wake != nil {
		stop := context.AfterFunc(req.Wake, func() { n.endHold(owner, 'w', w.ID) })
		defer stop()
	}
	r.stats.Out.Add(1)
	msg, err := n.nc.RequestWithContext(rctx, n.subject("n", owner, "poll"), data)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		r.stats.NoResponders.Add(1)
		return nil, fmt.Errorf("cluster: relay to node %s: %w (%w)", owner, transport.ErrOwnerUnreachable, err)
	case ctx.Err() != nil:
		// The client went away: end the hold on the owner.
		if w.ID != "" {
			n.endHold(owner, 'c', w.ID)
		}
		return nil, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		r.stats.Timeouts.Add(1)
		if w.ID != "" {
			n.endHold(owner, 'c', w.ID)
		}
		return nil, fmt.Errorf("cluster: relay to node %s: %w (%w)", owner, transport.ErrOwnerUnreachable, err)
	default:
		r.stats.Unreachable.Add(1)
		return nil, fmt.Errorf("cluster: relay to node %s: %w (%w)", owner, transport.ErrOwnerUnreachable, err)
	}
	body, meta, ok := split(msg.Data)
	var rw relayResponseWire
	if !ok || json.Unmarshal(meta, &rw) != nil {
		r.stats.Invalid.Add(1)
		return nil, fmt.Errorf("cluster: relay to node %s: malformed answer", owner)
	}
	if rw.Status == statusLeaving {
		r.stats.NoResponders.Add(1)
		return nil, fmt.Errorf("cluster: relay to node %s: leaving the cluster: %w", owner, transport.ErrOwnerUnreachable)
	}
	return &transport.RelayResponse{Status: rw.Status, Body: body, Browser: rw.Browser, Held: rw.Held}, nil
}

// endHold asks owner to end the held connect of relayed request id: 'c'
// (its client went away) or 'w' (answer it now).
func (n *Node) endHold(owner string, how byte, id string) {
	if err := n.nc.Publish(n.subject("n", owner, "pollcancel"), append([]byte{how}, id...)); err != nil {
		n.log.Debug("cannot end a relayed held connect", "node", owner, "err", err)
	}
}

// split cuts a relay payload at its last newline.
func split(data []byte) (payload, meta []byte, ok bool) {
	i := bytes.LastIndexByte(data, '\n')
	if i < 0 {
		return nil, nil, false
	}
	return data[:i], data[i+1:], true
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// relayed is the callback of this node's poll subject. It never blocks:
// each request is served by a goroutine of its own, at most MaxRelayed at
// once; beyond, the request is refused with 503.
func (n *Node) relayed(m *nats.Msg) {
	r := &n.relay
	select {
	case r.sem <- struct{}{}:
	default:
		r.stats.Refused.Add(1)
		n.respond(m, &transport.RelayResponse{Status: http.StatusServiceUnavailable})
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.sem
		// The relaying node answers, as if there were no responders.
		n.respond(m, &transport.RelayResponse{Status: statusLeaving})
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go n.serveRelayed(m)
}

// serveRelayed serves one relayed request and answers it.
func (n *Node) serveRelayed(m *nats.Msg) {
	r := &n.relay
	defer func() {
		<-r.sem
		r.wg.Done()
	}()
	r.stats.In.Add(1)
	req, id, err := decodeRelayRequest(m.Data)
	if err != nil {
		r.stats.Invalid.Add(1)
		n.log.Debug("malformed relayed poll", "err", err)
		n.respond(m, &transport.RelayResponse{Status: http.StatusBadRequest})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if id != "" {
		wake, woken := context.WithCancel(context.Background())
		defer woken()
		req.Wake = wake
		r.mu.Lock()
		r.held[id] = relayHold{cancel: cancel, wake: woken}
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			delete(r.held, id)
			r.mu.Unlock()
		}()
	}
	defer func() {
		// As net/http does for a request served here: a panic ends this
		// request only.
		if p := recover(); p != nil {
			n.log.Error("panic serving a relayed poll", "panic", p, "stack", string(debug.Stack()))
			n.respond(m, &transport.RelayResponse{Status: http.StatusInternalServerError})
		}
	}()
	resp := r.polls.ServeRelayed(ctx, req, nil)
	n.respond(m, resp)
}

// relayCancel ends a relayed held connect: its relaying node's client
// went away ("c" and its id), or the relaying node shuts down ("w").
func (n *Node) relayCancel(m *nats.Msg) {
	if len(m.Data) < 2 {
		return
	}
	r := &n.relay
	r.mu.Lock()
	h, ok := r.held[string(m.Data[1:])]
	r.mu.Unlock()
	switch {
	case !ok:
	case m.Data[0] == 'c':
		h.cancel()
	case m.Data[0] == 'w':
		h.wake()
	}
}

// respond answers a relayed request; its body is appended in place.
func (n *Node) respond(m *nats.Msg, resp *transport.RelayResponse) {
	meta, _ := json.Marshal(&relayResponseWire{Status: resp.Status, Browser: resp.Browser, Held: resp.Held})
	data := append(append(resp.Body, '\n'), meta...)
	if err := m.Respond(data); err != nil {
		n.log.Debug("cannot answer a relayed poll", "err", err)
	}
}

// decodeRelayRequest checks and decodes a relayed request (untrusted
// input: its messages are checked by the transport like a client's).
func decodeRelayRequest(data []byte) (*transport.RelayRequest, string, error) {
	msgs, meta, ok := split(data)
	if !ok {
		return nil, "", errors.New("no separator")
	}
	var w relayRequestWire
	if err := json.Unmarshal(meta, &w); err != nil {
		return nil, "", err
	}
	if len(w.ID) > 64 || len(w.Browser) > maxRelayFieldLen || len(w.RemoteAddr) > maxRelayFieldLen || len(w.Header) > maxRelayHeaders || w.MaxHold < 0 || w.MaxHold > maxRelayHold {
		return nil, "", errors.New("field out of bounds")
	}
	return &transport.RelayRequest{
		Transport: w.Transport, Messages: msgs, Browser: w.Browser, NewBrowser: w.NewBrowser,
		RemoteAddr: w.RemoteAddr, Header: w.Header, HTTP2: w.HTTP2,
		MaxHold: time.Duration(w.MaxHold) * time.Millisecond, DeliverOnly: w.Deliver,
	}, w.ID, nil
}
