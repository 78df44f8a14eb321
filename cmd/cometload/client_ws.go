package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// wsShared is what all websocket clients of a run share: the dialer, with
// its pool of write buffers (an idle connection holds none), and the pool
// of frame buffers the readers fill.
type wsShared struct {
	dialer *websocket.Dialer
	url    string // ws://…
	frames sync.Pool
}

// sockOpts are socket options for a run's websocket connections, set
// before connecting; zero values leave the system's defaults.
type sockOpts struct {
	rcvBuf int // SO_RCVBUF, bytes: the TCP window follows it
	mss    int // TCP_MAXSEG, bytes: the segment size the peer may send
}

// control returns the dialer's Control function that sets o, or nil.
func (o sockOpts) control() func(network, address string, rc syscall.RawConn) error {
	if o == (sockOpts{}) {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			if o.rcvBuf > 0 {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvBuf); e != nil {
					err = fmt.Errorf("SO_RCVBUF %d: %w", o.rcvBuf, e)
					return
				}
			}
			if o.mss > 0 {
				if e := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, o.mss); e != nil {
					err = fmt.Errorf("TCP_MAXSEG %d: %w", o.mss, e)
				}
			}
		})
		return errors.Join(cerr, err)
	}
}

// wsURL turns an http(s):// endpoint into its ws(s):// one.
func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "https://"):
		return "wss://" + u[len("https://"):]
	case strings.HasPrefix(u, "http://"):
		return "ws://" + u[len("http://"):]
	}
	return u
}

// newWSShared prepares the websocket clients of a run.
func newWSShared(httpURL string, readBuf int, so sockOpts, tc *tls.Config) *wsShared {
	u := wsURL(httpURL)
	d := &net.Dialer{Timeout: 10 * time.Second, Control: so.control()}
	return &wsShared{
		url: u,
		dialer: &websocket.Dialer{
			NetDialContext:   d.DialContext,
			TLSClientConfig:  tc,
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   readBuf,
			WriteBufferSize:  4096,
			WriteBufferPool:  &sync.Pool{},
		},
		frames: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }},
	}
}

// wsClient is a Bayeux session over one websocket connection. One reader
// goroutine handles every frame; writes (requests, publishes, the connect
// loop's connects) are serialised by wmu.
type wsClient struct {
	session
	conn    *websocket.Conn
	wmu     sync.Mutex
	wbuf    []byte // frame being written, under wmu
	done    chan struct{}
	closing atomic.Bool
	reshake atomic.Bool // a re-handshake is under way
}

func newWSClient(e *env, o clientOpts) *wsClient {
	return &wsClient{session: session{env: e, opts: o}, done: make(chan struct{})}
}

// Open implements Client.
func (c *wsClient) Open(ctx context.Context) error {
	u := c.env.ws.url
	if c.opts.url != "" && c.opts.url != c.env.url {
		u = wsURL(c.opts.url)
	}
	conn, resp, err := c.env.ws.dialer.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("websocket upgrade: %w (HTTP %d)", err, resp.StatusCode)
		}
		return fmt.Errorf("websocket dial: %w", err)
	}
	c.conn = conn
	go c.readLoop()
	if err := c.handshake(ctx); err != nil {
		c.closing.Store(true)
		c.conn.Close()
		return err
	}
	return nil
}

// handshake makes the handshake and the first (immediate) connect, then
// sends the first held connect of the loop.
func (c *wsClient) handshake(ctx context.Context) error {
	id := c.nextID()
	m, err := c.request(ctx, id, func(b []byte) []byte { return appendHandshake(b, id, "websocket") }, false)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := replyError(&m); err != nil {
		return err
	}
	cid := m.ClientID
	c.mu.Lock()
	c.clientID = cid
	c.mu.Unlock()
	c.adviceUpdate(m.Advice)
	id = c.nextID()
	m, err = c.request(ctx, id, func(b []byte) []byte { return appendConnect(b, id, cid, "websocket", true) }, false)
	if err != nil {
		return fmt.Errorf("first connect: %w", err)
	}
	if err := replyError(&m); err != nil {
		return err
	}
	c.adviceUpdate(m.Advice)
	return c.sendConnect()
}

// request writes one message built by build and waits for its reply.
func (c *wsClient) request(ctx context.Context, id string, build func([]byte) []byte, wantData bool) (wireMsg, error) {
	w := c.register(id, wantData)
	if err := c.write(func(b []byte) []byte { return build(append(b, '[')) }); err != nil {
		c.unregister(id)
		return wireMsg{}, err
	}
	return c.wait(ctx, id, w, c.done)
}

// write sends one frame built by build (which must produce a JSON array
// but for its closing bracket).
func (c *wsClient) write(build func([]byte) []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(build(c.wbuf[:0]), ']')
	c.conn.SetWriteDeadline(time.Now().Add(c.env.timeout))
	err := c.conn.WriteMessage(websocket.TextMessage, c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large buffer per connection
	}
	return err
}

// sendConnect sends the connect loop's next (held) connect.
func (c *wsClient) sendConnect() error {
	cid := c.id()
	id := c.nextID()
	return c.write(func(b []byte) []byte { return appendConnect(append(b, '['), id, cid, "websocket", false) })
}

// readLoop reads frames until the connection fails or closes. A client
// with a read gate stops between frames while the gate is shut.
func (c *wsClient) readLoop() {
	defer close(c.done)
	pool := &c.env.ws.frames
	gate := c.opts.gate
	for {
		if gate != nil {
			gate.wait(c.conn)
		}
		_, r, err := c.conn.NextReader()
		if err != nil {
			if !c.closing.Load() {
				c.env.stats.errs.add("ws_closed", err.Error())
				c.opts.ended.note(endReason(err))
			}
			return
		}
		bp := pool.Get().(*[]byte)
		b, err := readFrame(r, (*bp)[:0])
		if err != nil {
			*bp = b[:0]
			pool.Put(bp)
			if !c.closing.Load() {
				c.env.stats.errs.add("ws_read", err.Error())
				c.opts.ended.note(endReason(err))
			}
			return
		}
		connects := c.dispatch(b, time.Now().UnixNano())
		if cap(b) <= 1<<20 {
			*bp = b[:0]
			pool.Put(bp)
		}
		for i := range connects {
			c.onConnect(&connects[i])
		}
	}
}

// readFrame reads a whole frame into buf, growing it as needed.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// endReason describes how a websocket read ended: "close CODE TEXT" for a
// close frame, "eof" for a TCP close without one, "reset" for a TCP reset,
// "timeout" for a read deadline, or the error itself.
func endReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// The library's name for a connection that ended without a close
		// frame (code 1006 is never sent on the wire).
		return "eof"
	case errors.As(err, &ce):
		return fmt.Sprintf("close %d %s", ce.Code, ce.Text)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

// bayeuxSign describes a connect reply that ends a session: what happened
// and the reply's error, if any.
func bayeuxSign(what, bayeuxErr string) string {
	if bayeuxErr == "" {
		return what
	}
	return what + " " + bayeuxErr
}

// onConnect follows a connect reply's advice: connect again, re-handshake
// or stop.
func (c *wsClient) onConnect(m *wireMsg) {
	if c.closing.Load() {
		return
	}
	if c.opts.gate.draining() {
		// A paused client reading what is left: no more connects.
		if !m.ok() {
			c.env.stats.errs.add("connect_failed", m.Error)
		}
		return
	}
	c.adviceUpdate(m.Advice)
	reconnect := "retry"
	if m.Advice != nil && m.Advice.Reconnect != "" {
		reconnect = m.Advice.Reconnect
	}
	_, interval := c.advised()
	if !m.ok() {
		c.env.stats.errs.add("connect_failed", m.Error)
		c.opts.ended.note(bayeuxSign("connect failed", m.Error))
		interval = max(interval, 500*time.Millisecond)
	}
	switch reconnect {
	case "none":
		c.env.stats.errs.add("reconnect_none", m.Error)
		c.opts.ended.note(bayeuxSign("advice reconnect none", m.Error))
		return
	case "handshake":
		if m.ok() {
			break
		}
		if c.reshake.CompareAndSwap(false, true) {
			go c.rehandshake()
		}
		return
	}
	if interval <= 0 {
		if err := c.sendConnect(); err != nil && !c.closing.Load() {
			c.env.stats.errs.add("ws_write", err.Error())
		}
		return
	}
	time.AfterFunc(interval, func() {
		if !c.closing.Load() {
			c.sendConnect()
		}
	})
}

// rehandshake starts a new session on the same connection after the
// server forgot the old one (402), and renews the subscriptions.
func (c *wsClient) rehandshake() {
	defer c.reshake.Store(false)
	c.env.stats.errs.add("rehandshake", "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.env.timeout)
	defer cancel()
	if err := c.handshake(ctx); err != nil {
		c.env.stats.errs.add("rehandshake_failed", err.Error())
		return
	}
	for _, ch := range c.subscriptions() {
		if err := c.subscribe(ctx, ch); err != nil {
			c.env.stats.errs.add("resubscribe_failed", err.Error())
		}
	}
}

// Subscribe implements Client.
func (c *wsClient) Subscribe(ctx context.Context, channel string) error {
	if err := c.subscribe(ctx, channel); err != nil {
		return err
	}
	c.subscribed(channel)
	return nil
}

func (c *wsClient) subscribe(ctx context.Context, channel string) error {
	id, cid := c.nextID(), c.id()
	m, err := c.request(ctx, id, func(b []byte) []byte { return appendSubscribe(b, id, cid, channel) }, false)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return replyError(&m)
}

// Publish implements Client.
func (c *wsClient) Publish(_ context.Context, channel string, data [][]byte) error {
	cid := c.id()
	return c.write(func(b []byte) []byte {
		b = append(b, '[')
		for i, d := range data {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPublish(b, c.nextID(), cid, channel, d)
		}
		return b
	})
}

// Call implements Client.
func (c *wsClient) Call(ctx context.Context, channel string, data []byte) error {
	id, cid := c.nextID(), c.id()
	m, err := c.request(ctx, id, func(b []byte) []byte { return appendPublish(b, id, cid, channel, data) }, true)
	if err != nil {
		return err
	}
	return replyError(&m)
}

// Close implements Client.
func (c *wsClient) Close(ctx context.Context) {
	if c.conn == nil || c.closing.Swap(true) {
		return
	}
	if g := c.opts.gate; g != nil {
		// A paused reader must run to read the disconnect's reply, or to
		// see the connection close.
		g.resume(0)
	}
	if cid := c.id(); cid != "" {
		id := c.nextID()
		w := c.register(id, false)
		if c.write(func(b []byte) []byte { return appendDisconnect(append(b, '['), id, cid) }) == nil {
			c.wait(ctx, id, w, c.done) // best effort
		}
	}
	c.conn.Close()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}
