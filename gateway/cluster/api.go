package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// APIHandler answers a control API request from another node: method
// names the call, req is its encoded request, and the result is the
// encoded reply. The node bounds the reply by the NATS server's maximum
// payload; it must not block past ctx.
type APIHandler func(ctx context.Context, method string, req []byte) []byte

// Errors of Ask.
var (
	// ErrNodeGone means no node answers for the node id asked (NATS "no
	// responders"): it has left or restarted with a new id. Its method
	// Gone reports true, for packages that do not import this one.
	ErrNodeGone error = goneError{}
	// ErrUnreachable means the node did not answer within
	// Config.RequestTimeout (or the connection to NATS is down).
	ErrUnreachable = errors.New("cluster: node did not answer")
)

type goneError struct{}

func (goneError) Error() string { return "cluster: node gone" }

// Gone reports that the node is gone.
func (goneError) Gone() bool { return true }

var errBadReply = errors.New("cluster: malformed reply")

// maxMethod bounds a method name on an API subject.
const maxMethod = 64

// validMethod reports whether method can be a subject token: letters only.
func validMethod(method string) bool {
	if method == "" || len(method) > maxMethod {
		return false
	}
	for i := 0; i < len(method); i++ {
		c := method[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// HandleAPI sets what answers the control API requests of other nodes;
// call it before Start. Until it is set, requests are answered with an
// empty reply.
func (n *Node) HandleAPI(h func(ctx context.Context, method string, req []byte) []byte) {
	f := APIHandler(h)
	n.apiHandler.Store(&f)
}

// OwnerOf returns the id of the node owning session clientID (see the
// package's OwnerOf).
func (n *Node) OwnerOf(clientID string) string { return OwnerOf(clientID) }

// serveAPI subscribes to the control API's subjects, P.all.api.<method>
// and P.n.<id>.api.<method>, and to P.presence, and starts the heartbeat.
// A reply to an API request is the answering node's id (IDLen bytes)
// followed by what its APIHandler returned.
func (n *Node) serveAPI() error {
	n.apiSem = make(chan struct{}, n.cfg.MaxRelayed)
	subs := []struct {
		subject string
		cb      nats.MsgHandler
	}{
		{n.subject("presence"), n.onHeartbeat},
		{n.subject("all", "api", "*"), n.onAPIRequest},
		{n.subject("n", n.id, "api", "*"), n.onAPIRequest},
	}
	for _, s := range subs {
		sub, err := n.nc.Subscribe(s.subject, s.cb)
		if err != nil {
			return fmt.Errorf("cluster: subscribing to %s: %w", s.subject, err)
		}
		if err := sub.SetPendingLimits(n.cfg.MaxPendingMessages, n.cfg.MaxPendingBytes); err != nil {
			return fmt.Errorf("cluster: pending limits of %s: %w", s.subject, err)
		}
	}
	n.beat(false)
	n.wg.Add(1)
	go n.heartbeats()
	return nil
}

// leave tells the other nodes that this one is leaving, so that they stop
// expecting its answers at once.
func (n *Node) leave() {
	if n.started.Load() && !n.nc.IsClosed() {
		n.beat(true)
	}
}

// onAPIRequest hands a request of another node to a goroutine, bounded by
// Config.MaxRelayed requests at once (past it the request is not
// answered, and the asking node reports this one as unreachable).
func (n *Node) onAPIRequest(m *nats.Msg) {
	method := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if m.Reply == "" || !validMethod(method) {
		n.stats.PeerInvalid.Add(1)
		return
	}
	select {
	case n.apiSem <- struct{}{}:
	default:
		n.log.Warn("too many control API requests from other nodes: one is not answered", "limit", cap(n.apiSem))
		return
	}
	go func() {
		defer func() { <-n.apiSem }()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		var body []byte
		if h := n.apiHandler.Load(); h != nil {
			body = (*h)(ctx, method, m.Data)
		}
		out := make([]byte, 0, IDLen+len(body))
		out = append(append(out, n.id...), body...)
		if max := n.nc.MaxPayload(); max > 0 && int64(len(out)) > max {
			n.log.Warn("control API reply too large for NATS: not sent", "method", method, "bytes", len(out), "limit", max)
			out = out[:IDLen] // an empty reply: the asker reports it as failed
		}
		if err := n.nc.Publish(m.Reply, out); err != nil {
			n.log.Debug("cannot answer a control API request", "method", method, "err", err)
		}
	}()
}

// Gather sends a control API request to every other live node
// (P.all.api.<method>) and calls each with the name and reply of each node that answers,
// until every node known live when it was called has answered, or
// Config.RequestTimeout or ctx ends. It returns the names of the nodes
// that did not answer, sorted. This node does not receive its own
// request: the caller answers for it. each is called from Gather's
// goroutine, never concurrently.
func (n *Node) Gather(ctx context.Context, method string, req []byte, each func(node string, reply []byte)) (unreachable []string) {
	expected := n.others()
	names := func() []string {
		out := make([]string, 0, len(expected))
		for _, name := range expected {
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	if len(expected) == 0 {
		return nil
	}
	if !validMethod(method) || !n.Connected() {
		return names()
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	inbox := n.nc.NewRespInbox()
	// A channel sized for the answers expected (a synchronous
	// subscription would allocate the client's default 64k slots); what
	// does not fit is dropped by the client and its node reported.
	replies := make(chan *nats.Msg, min(len(expected)+16, maxNodes))
	sub, err := n.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		n.log.Warn("cannot gather from the other nodes", "method", method, "err", err)
		return names()
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(n.subject("all", "api", method), inbox, req); err != nil {
		n.log.Warn("cannot gather from the other nodes", "method", method, "err", err)
		return names()
	}
	answered := make(map[string]bool, len(expected))
	for pending := len(expected); pending > 0 && len(answered) < maxNodes; {
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-ctx.Done():
		}
		if m == nil {
			break
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			break // no responders: no other node is subscribed
		}
		if len(m.Data) < IDLen || !validID(string(m.Data[:IDLen])) {
			n.stats.PeerInvalid.Add(1)
			continue
		}
		id := string(m.Data[:IDLen])
		if answered[id] || id == n.id {
			continue
		}
		answered[id] = true
		name, ok := expected[id]
		if ok {
			pending--
			delete(expected, id)
		} else {
			name = n.nameOf(id) // joined since
		}
		each(name, m.Data[IDLen:])
	}
	return names()
}

// Ask sends a control API request to node id (P.n.<id>.api.<method>) and
// returns its reply, within Config.RequestTimeout. ErrNodeGone: no such
// node; ErrUnreachable: no answer in time.
func (n *Node) Ask(ctx context.Context, id, method string, req []byte) ([]byte, error) {
	if !validID(id) || !validMethod(method) {
		return nil, ErrNodeGone
	}
	if !n.Connected() {
		return nil, fmt.Errorf("%w: not connected to NATS", ErrUnreachable)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	m, err := n.nc.RequestWithContext(ctx, n.subject("n", id, "api", method), req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNodeGone
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, n.nameOf(id), err)
	case len(m.Data) < IDLen || string(m.Data[:IDLen]) != id:
		n.stats.PeerInvalid.Add(1)
		return nil, errBadReply
	}
	return m.Data[IDLen:], nil
}
