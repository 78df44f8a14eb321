package transport

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/gorilla/websocket"
)

// Bounds of a relayed websocket connection: frames waiting to be relayed
// in order, and connects relayed at once (a newer one supersedes an older
// one on the owner; the bound only stops a client that floods).
const (
	wsRelayQueue    = 16
	wsRelayConnects = 2
)

// wsRelay serves a websocket connection whose frames name a session that
// lives on another node (see Relay): clients that handshake over HTTP and
// then open their websocket (Faye does) reach whichever node the load
// balancer picks. Each frame is relayed to the owner as a long-polling
// request would be, and the owner's answer is written back as one frame;
// a lone /meta/connect is held on the owner, in its own goroutine, while
// the other frames go on, in order, through one goroutine per connection.
// Nothing of it runs on the frame workers shared by connections.
type wsRelay struct {
	queue    chan relayedFrame
	connects atomic.Int32
	ctx      context.Context
	cancel   context.CancelFunc
	// idle closes the connection when no frame came for longer than a
	// session may go without a connect: it has no session on this node
	// whose expiry would end it.
	idle *time.Timer
}

func (r *wsRelay) stop() {
	r.cancel()
	r.idle.Stop()
}

// relayedFrame is a frame waiting to be relayed, and its session.
type relayedFrame struct {
	body     []byte
	clientID string
}

// relayable reports whether the frame's messages are for a session owned
// by another node: the connection has no session of its own, and its
// first message names a session of another node.
func (c *wsConn) relayable(msgs []bayeux.Message) bool {
	h := c.h
	if h.relay == nil || c.client.Bound != nil || c.client.HandshakePerConnection {
		return false
	}
	m := &msgs[0]
	return m.Channel != bayeux.MetaHandshake && m.ClientID != "" && h.relay.Remote(m.ClientID)
}

// relayFrame hands frame data (messages msgs) to the relay; it reports
// false when the connection must end (too many frames in flight).
func (c *wsConn) relayFrame(data []byte, msgs []bayeux.Message) bool {
	r := c.wsRelay.Load()
	if r == nil {
		r = &wsRelay{queue: make(chan relayedFrame, wsRelayQueue)}
		r.ctx, r.cancel = context.WithCancel(context.Background())
		cfg := c.h.e.Config()
		r.idle = time.AfterFunc(cfg.Timeout+cfg.Interval+cfg.MaxInterval, func() {
			c.closeWith(websocket.CloseGoingAway, "idle")
		})
		c.wsRelay.Store(r)
		if c.finished.Load() { // finish ran meanwhile and saw none
			r.stop()
		}
		go c.relayLoop(r)
	} else {
		cfg := c.h.e.Config()
		r.idle.Reset(cfg.Timeout + cfg.Interval + cfg.MaxInterval)
	}
	body := bytes.Clone(data)
	if len(msgs) == 1 && msgs[0].Channel == bayeux.MetaConnect {
		if r.connects.Add(1) > wsRelayConnects {
			r.connects.Add(-1)
			return c.relayFlooded()
		}
		go func() {
			defer r.connects.Add(-1)
			c.relayOne(r.ctx, body, msgs[0].ClientID, true)
		}()
		return true
	}
	select {
	case r.queue <- relayedFrame{body, msgs[0].ClientID}:
		return true
	default:
		return c.relayFlooded()
	}
}

func (c *wsConn) relayFlooded() bool {
	c.h.cfg.Logger.Info("websocket client sent too many frames for a session on another node", "remote", c.client.RemoteAddr)
	c.closeWith(websocket.ClosePolicyViolation, "too many requests in flight")
	return false
}

// relayLoop relays the connection's non-connect frames in order until the
// connection ends.
func (c *wsConn) relayLoop(r *wsRelay) {
	for {
		select {
		case <-r.ctx.Done():
			return
		case f := <-r.queue:
			c.relayOne(r.ctx, f.body, f.clientID, false)
		}
	}
}

// relayOne relays one frame to the session's owner and writes its answer.
func (c *wsConn) relayOne(ctx context.Context, body []byte, clientID string, connect bool) {
	h := c.h
	req := &RelayRequest{
		ClientID:  clientID,
		Transport: LongPolling,
		Messages:  body,
		// Events only with connect replies: this connection's connects
		// and other frames travel separately, and their answers could
		// pass each other.
		DeliverOnly: true,
		Browser:     c.client.Browser,
		NewBrowser:  c.client.NewBrowser,
		RemoteAddr:  c.client.RemoteAddr,
		Header:      c.client.Header,
	}
	if connect {
		req.MaxHold = h.maxHold
		req.Wake = h.closing
		if h.closing.Err() != nil {
			req.MaxHold = time.Millisecond
		}
	}
	resp, err := h.relay.Forward(ctx, req)
	switch {
	case ctx.Err() != nil:
		return // the connection ended
	case errors.Is(err, ErrOwnerUnreachable):
		// Answered here: the session is unknown on this node, so the
		// client is told to handshake again (on this connection).
		c.answerLocally(body)
		return
	case err != nil:
		h.cfg.Logger.Debug("relayed websocket frame failed", "session", clientID, "err", err)
		c.closeWith(websocket.CloseTryAgainLater, "session owner did not answer")
		return
	case !validRelayResponse(resp):
		h.cfg.Logger.Debug("invalid answer from the session's owner", "session", clientID, "status", resp.Status)
		c.closeWith(websocket.CloseInternalServerErr, "invalid answer")
		return
	case resp.Status == 0 || resp.Status == h.cfg.DuplicateConnectStatus && connect:
		return // the hold was given up, or superseded by a newer connect
	case resp.Status != http.StatusOK:
		h.cfg.Logger.Debug("session owner refused a relayed websocket frame", "session", clientID, "status", resp.Status)
		c.closeWith(websocket.CloseTryAgainLater, "session owner busy")
		return
	}
	c.everBound.Store(true) // the session lives elsewhere: the handshake clock stops
	buf := make([]byte, frameHeaderRoom, frameHeaderRoom+len(resp.Body))
	buf = append(buf, resp.Body...)
	c.wmu.Lock()
	c.writeLocked(buf)
	c.wmu.Unlock()
}

// answerLocally processes a frame for a session this node does not have,
// without binding the connection, and writes the replies (402 and advice
// to handshake again).
func (c *wsConn) answerLocally(body []byte) {
	msgs, err := bayeux.Decode(body, 0)
	if err != nil {
		return
	}
	client := &engine.Client{Transport: WebSocket, RemoteAddr: c.client.RemoteAddr, Browser: c.client.Browser}
	b := c.h.e.Process(context.Background(), client, msgs)
	b.End()
	buf := append(make([]byte, frameHeaderRoom, 256), '[')
	for i, x := range b.Exchanges {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = bayeux.AppendMessage(buf, x.Reply)
	}
	buf = append(buf, ']')
	c.wmu.Lock()
	c.writeLocked(buf)
	c.wmu.Unlock()
}
