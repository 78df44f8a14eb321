package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/gorilla/websocket"
)

// wsConn is one websocket connection. The reader goroutine owns client and
// holdTimer; writes of any goroutine happen under wmu.
type wsConn struct {
	h      *Handler
	ws     *websocket.Conn // reads only
	conn   net.Conn        // the socket, written by this package
	client engine.Client   // reader goroutine only

	bound     atomic.Pointer[engine.Session] // session for flushes
	scheduled atomic.Bool                    // a flush is pending or running
	batching  atomic.Bool                    // ...and waits in the flush delay list
	closed    atomic.Bool

	wmu       sync.Mutex                 // one writer at a time; guards the socket's write side and the fields below
	written   atomic.Int64               // bytes of the frames sent or queued on the socket; added to under wmu, next to it: the line a write dirties anyway
	holdTimer atomic.Pointer[time.Timer] // timer of the held connect
	everBound atomic.Bool                // a session was bound once (the handshake clock stops)
	pingTimer *time.Timer                // nil when polled

	// Publish replies held for the answer that follows them (see
	// Exchange.AnswerFollows), as encoded messages separated by commas;
	// the next flush writes them first. ackTimer flushes them if the
	// answer is late. Both are guarded by wmu; ackTimer is nil until the
	// session makes its first remote call.
	deferred []byte
	ackTimer *time.Timer
	// rdeadline is the read deadline last set (the reader's).
	rdeadline time.Time

	// The write side (wswrite.go), guarded by wmu. raw writes to the
	// socket without waiting (nil: every write goes through drain); out
	// holds bytes the socket has not taken yet, which drain writes while
	// stalled is set.
	raw              syscall.RawConn
	compress         bool // permessage-deflate was negotiated
	out              []byte
	stalled          atomic.Bool // set and cleared under wmu; read without it by Wake
	closeWhenDrained bool        // a close frame is the last of out
	sockClosed       bool

	// Polled connections (see poller): the socket's descriptor, the
	// library's buffered reader, and whether a reader is running.
	fd       int
	br       *bufio.Reader
	polled   bool
	tls      bool // conn is a *tls.Conn: written through drain, and its reads may leave records buffered
	reading  atomic.Bool
	finished atomic.Bool

	// wsRelay relays the frames of a session owned by another node;
	// nil until the first such frame (set by the frame worker, read by
	// finish; see wsrelay.go).
	wsRelay atomic.Pointer[wsRelay]
}

var _ engine.Conn = (*wsConn)(nil)

func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if p := h.cfg.WebSocket.Subprotocol; p != "" && !slices.Contains(websocket.Subprotocols(r), p) {
		h.badRequest(w, r, "websocket subprotocol "+p+" required", nil)
		return
	}
	hj := &readerHijacker{ResponseWriter: w, deflate: h.cfg.WebSocket.Compression}
	up := &h.upgrader
	if h.poller != nil {
		hj.size, up = max(h.cfg.WebSocket.ReadBufferSize, 264), &h.polled
	}
	// The session a connection handshakes is bound to the browser as an
	// HTTP one is: browsers keep the cookie of the 101 response and send
	// it with later upgrades, and only they may resume the session.
	browser := h.browserID(r)
	newBrowser := browser == ""
	var header http.Header
	mintedID := ""
	if newBrowser {
		browser = engine.NewBrowserID()
		if h.minted.add(browser) {
			mintedID = browser
		}
		header = http.Header{"Set-Cookie": {h.browserCookie(r, browser).String()}}
	}
	ws, err := up.Upgrade(hj, r, header)
	if err != nil {
		// The upgrader has already answered (403 for a refused origin).
		if !h.originAllowed(r) {
			h.refusedOrigin(r, "websocket origin refused")
			return
		}
		h.cfg.Logger.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	h.stats.wsOpened.Add(1)
	c := &wsConn{h: h, ws: ws, conn: hj.conn, compress: hj.negotiatedDeflate()}
	// The socket under the connection and its wrappers (TLS, a
	// listener's per-address limit, in any order): under TLS it can be
	// watched for readability but never written directly.
	sock, isTLS := hj.conn, false
	for {
		if _, ok := sock.(*tls.Conn); ok {
			isTLS = true
		}
		u, ok := sock.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		sock = u.NetConn()
	}
	var rc syscall.RawConn
	if tcp, ok := sock.(*net.TCPConn); ok {
		rc, _ = tcp.SyscallConn()
	}
	if !isTLS {
		c.raw = rc
	}
	c.tls = isTLS
	live := h.live.Load()
	c.client = engine.Client{
		Transport:              WebSocket,
		Push:                   true,
		Browser:                browser,
		NewBrowser:             newBrowser,
		TrustSession:           live.TrustClientSession,
		HandshakePerConnection: h.cfg.WebSocket.RequireHandshakePerConnection,
		RemoteAddr:             r.RemoteAddr,
		Header:                 h.keptHeaders(r.Header),
		Conn:                   c,
	}
	ws.SetReadLimit(int64(live.MaxRequestBytes))
	// Every frame, the library's control replies included, is framed and
	// written by this package under wmu (wswrite.go).
	ws.SetPingHandler(func(data string) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if !c.closed.Load() {
			c.sendLocked(controlFrame(0xA, []byte(data)))
		}
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.closeWith(code, "")
		return nil
	})
	// Until it handshakes, a connection is on a clock.
	polled := c.pollable(rc, hj.br)
	h.handshakes.watch(c, mintedID)
	if polled {
		h.conns.add(c)
		if err := h.poller.add(c); err != nil {
			h.cfg.Logger.Warn("cannot watch websocket connection", "remote", r.RemoteAddr, "err", err)
			c.closeWith(websocket.CloseTryAgainLater, "")
		}
		return
	}
	h.conns.add(c)
	ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	c.pingTimer = time.AfterFunc(h.cfg.WebSocket.PingInterval, c.ping)
	// Read in a fresh goroutine and return: the handler's goroutine holds a
	// deep stack and, through the hijacked response, net/http's read and
	// write buffers, which an idle connection must not keep.
	go c.readLoop()
}

// pollable prepares a connection whose socket is rc (plain TCP or TLS
// over TCP) for the poller; it reports false when the connection needs a
// reader goroutine instead.
func (c *wsConn) pollable(rc syscall.RawConn, br *bufio.Reader) bool {
	if rc == nil || br == nil || c.h.poller == nil {
		return false
	}
	if rc.Control(func(fd uintptr) { c.fd = int(fd) }) != nil {
		return false
	}
	c.br, c.polled = br, true
	return true
}

// readable runs when the poller sees data on a polled connection: a
// worker reads and processes every frame that arrived, then re-arms the
// connection.
func (c *wsConn) readable() {
	if !c.reading.CompareAndSwap(false, true) {
		return // a reader is running; it re-arms when done
	}
	c.h.workers.Go(func() {
		for {
			// A frame that started arriving must finish within the idle
			// timeout.
			data, ok := c.readFrame()
			if !ok {
				c.finish()
				return
			}
			if !c.handleFrame(data) {
				c.finish()
				return
			}
			if !c.buffered() {
				break
			}
		}
		c.reading.Store(false)
		if err := c.h.poller.rearm(c); err != nil {
			c.finish()
		}
	})
}

// aLongTimeAgo is a read deadline that has passed: a read under it takes
// only what is already buffered.
var aLongTimeAgo = time.Unix(1, 0)

// buffered reports whether bytes that the poller cannot see wait to be
// read: in the library's reader or, under TLS, inside the TLS layer (a
// whole record read from the socket with the previous one, or plaintext
// that did not fit the reader). To know, it peeks under a passed read
// deadline: the TLS layer serves what it holds and gives up, with a
// timeout, before any read of the socket. A timeout leaves the TLS
// connection usable: crypto/tls (go1.26 conn.go, readRecordOrCCS, after
// both readFromUntil calls) records an error as permanent only
// `if e, ok := err.(net.Error); !ok || !e.Temporary()`, and a deadline's
// error is temporary; readFromUntil reads into its raw input with
// bytes.Buffer.ReadFrom, which keeps what it read before the error, and
// nothing is decrypted before a record is whole. net/http relies on the
// same: Hijack aborts its background read of a TLS connection with a past
// deadline. A partial record left behind is completed from the socket,
// which the re-armed (level-triggered) poller reports.
// It reports true on any other error, which the next read meets again
// (the TLS layer keeps it, and bufio only cleared its copy).
func (c *wsConn) buffered() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	if !c.tls {
		return false
	}
	c.conn.SetReadDeadline(aLongTimeAgo)
	c.rdeadline = time.Time{} // the next read sets a real one
	_, err := c.br.Peek(1)
	return err == nil || !isTimeout(err)
}

// keptHeaders copies the request headers that backends may need
// (Config.KeepHeaders) so that a long-lived connection does not retain the
// whole upgrade request.
func (h *Handler) keptHeaders(src http.Header) map[string][]string {
	if len(h.cfg.KeepHeaders) == 0 {
		return nil
	}
	var kept map[string][]string
	for _, name := range h.cfg.KeepHeaders {
		if v := src.Values(name); len(v) > 0 {
			if kept == nil {
				kept = make(map[string][]string, len(h.cfg.KeepHeaders))
			}
			kept[http.CanonicalHeaderKey(name)] = append([]string(nil), v...)
		}
	}
	return kept
}

// extendRead moves the read deadline to IdleTimeout from now. A polled
// connection only reads once data has arrived, so its deadline only bounds
// how long a frame may take to arrive whole: it moves once less than half
// of IdleTimeout is left, which spares a runtime timer update per frame.
func (c *wsConn) extendRead() {
	now, it := time.Now(), c.h.cfg.WebSocket.IdleTimeout
	if c.polled && c.rdeadline.Sub(now) >= it/2 {
		return
	}
	c.rdeadline = now.Add(it)
	c.ws.SetReadDeadline(c.rdeadline)
}

func (c *wsConn) ping() {
	c.wmu.Lock()
	if c.closed.Load() {
		c.wmu.Unlock()
		return
	}
	// A stalled connection is not pinged: its drain bounds it.
	if !c.stalled.Load() {
		c.sendLocked(controlFrame(0x9, nil))
	}
	c.wmu.Unlock()
	c.pingTimer.Reset(c.h.cfg.WebSocket.PingInterval)
}

// readLoop reads frames until the connection fails or closes. It only
// reads: decoding and processing run on a worker (a goroutine reused while
// frames keep coming), so that this long-lived goroutine's stack stays
// small while it waits.
func (c *wsConn) readLoop() {
	defer c.finish()
	done := make(chan bool, 1)
	for {
		data, ok := c.readFrame()
		if !ok {
			return
		}
		c.h.workers.Go(func() { done <- c.handleFrame(data) })
		ok = <-done
		data = nil // do not keep the last frame while waiting for the next
		if !ok {
			return
		}
	}
}

// readFrame reads the next data frame within the idle timeout; it reports
// false when the connection failed or closed (an oversized frame is
// answered with close 1009).
func (c *wsConn) readFrame() ([]byte, bool) {
	c.extendRead()
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			c.h.cfg.Logger.Debug("websocket frame too large", "remote", c.client.RemoteAddr, "limit", c.h.live.Load().MaxRequestBytes)
			c.closeWith(websocket.CloseMessageTooBig, "frame too large")
		}
		return nil, false
	}
	return data, true
}

// handleFrame decodes and processes one frame; it reports false when the
// connection must end. A panic while processing (a bug, or a faulty
// extension or policy) ends this connection only, never the node.
func (c *wsConn) handleFrame(data []byte) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.h.cfg.Logger.Error("panic while processing a websocket frame", "remote", c.client.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
			ok = false
		}
	}()
	msgs, err := bayeux.Decode(data, c.h.live.Load().MaxBatch)
	switch {
	case errors.Is(err, bayeux.ErrEmptyBatch):
		return true // Faye clients send [] as a keep-alive
	case errors.Is(err, bayeux.ErrBatchTooLarge):
		c.h.cfg.Logger.Debug("websocket batch too large", "remote", c.client.RemoteAddr)
		c.closeWith(websocket.CloseMessageTooBig, "too many messages")
		return false
	case errors.Is(err, bayeux.ErrInvalidUTF8):
		// RFC 6455 section 8.1: a text frame that is not UTF-8 fails the
		// connection with 1007.
		c.h.cfg.Logger.Debug("websocket frame is not valid UTF-8", "remote", c.client.RemoteAddr)
		c.closeWith(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
		return false
	case err != nil:
		c.h.cfg.Logger.Debug("bad websocket frame", "remote", c.client.RemoteAddr, "err", err)
		c.closeWith(websocket.CloseInternalServerErr, "bad JSON")
		return false
	case handshakeNotAlone(msgs):
		c.h.cfg.Logger.Debug("websocket handshake batched with other messages", "remote", c.client.RemoteAddr)
		c.closeWith(websocket.CloseInternalServerErr, "handshake not alone")
		return false
	}
	if c.relayable(msgs) {
		return c.relayFrame(data, msgs)
	}
	return c.process(msgs)
}

// process handles one frame and writes its replies, preceded by any
// events already queued for the session, in one frame.
func (c *wsConn) process(msgs []bayeux.Message) bool {
	before := c.client.Bound
	b := c.h.e.Process(context.Background(), &c.client, msgs)
	if c.client.Bound != before {
		c.bound.Store(c.client.Bound)
		c.everBound.Store(true)
	}
	var held *engine.Exchange
	for _, x := range b.Exchanges {
		if x.IsConnect() && x.Reply.Successful && x.Hold > 0 && held == nil {
			held = x
		}
	}
	buf := c.h.getBuf()
	defer c.h.putBuf(buf)
	if !c.reply(b, held, buf) {
		return false
	}
	if held != nil {
		c.park(held)
	} else if c.client.Bound != before {
		c.Wake(false)
	}
	return true
}

// reply writes the replies of batch b (all but the held connect), preceded
// by the events already queued for its session, in one frame. Draining and
// writing under the write lock keeps frames in queue order.
func (c *wsConn) reply(b *engine.Batch, held *engine.Exchange, buf *[]byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	defer b.End() // also on a panic: the session must not stay in batch mode
	// An immediate connect reply carries queued events, leaving room for
	// itself under a per-frame limit; the flush sends the rest.
	room := engine.RoomForReply(c.h.cfg.WebSocket.MessagesPerFrame)
	var events [][]byte
	for _, x := range b.Exchanges {
		if x.IsConnect() && x.Reply.Successful && x != held {
			events = x.Session.Complete(x, events, room)
		}
	}
	// A batch that ended its session (a disconnect) first completes the
	// connect held before, with what is left: clients close the
	// connection only if no connect is outstanding when the disconnect
	// reply arrives.
	var prior *engine.Exchange
	ended := b.Session != nil && b.Session.Closed()
	if ended {
		events, prior = b.Session.Ended(events)
	} else if b.Session != nil && c.h.cfg.WebSocket.MessagesPerFrame == 0 {
		// With a per-frame limit, queued events are left to the flush,
		// which splits them.
		events = b.Session.Take(events, 0)
	}
	b.End()
	out, n := c.openFrame(*buf, events)
	if prior != nil {
		if n > 0 {
			out = append(out, ',')
		}
		out = bayeux.AppendMessage(out, prior.Reply)
		n++
	}
	// A publish whose answer follows waits for it, unless events go now.
	// (openFrame has taken any replies held before: they go now.)
	deferOK := len(events) == 0 && c.h.cfg.WebSocket.AnswerWait > 0
	deferred := false
	for _, x := range b.Exchanges {
		if x == held {
			continue
		}
		if deferOK && x.AnswerFollows && x.Reply.Successful {
			if len(c.deferred) > 0 {
				c.deferred = append(c.deferred, ',')
			}
			c.deferred = bayeux.AppendMessage(c.deferred, x.Reply)
			deferred = true
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = bayeux.AppendMessage(out, x.Reply)
		n++
	}
	out = append(out, ']')
	*buf = out
	if deferred {
		c.armAckTimer()
	}
	if n > 0 && !c.writeLocked(out) {
		return false
	}
	if ended && c.bound.Load() == b.Session {
		c.endLocked(b.Session)
	}
	return true
}

// openFrame starts a frame in buf: room for its header, then '[', the
// publish replies held for their answers (they answer requests that came
// before anything queued since), then events. It returns the frame so far
// and how many messages it holds; the caller holds wmu.
func (c *wsConn) openFrame(buf []byte, events [][]byte) ([]byte, int) {
	out := append(buf[:0], make([]byte, frameHeaderRoom)...)
	out = append(out, '[')
	n := 0
	if len(c.deferred) > 0 {
		out = append(out, c.deferred...)
		c.deferred = nil
		c.ackTimer.Stop()
		n++
	}
	for _, ev := range events {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, ev...)
		n++
	}
	return out, n
}

// armAckTimer makes sure held publish replies go out after at most
// AnswerWait, answer or not; the caller holds wmu.
func (c *wsConn) armAckTimer() {
	d := c.h.cfg.WebSocket.AnswerWait
	if c.ackTimer == nil {
		c.ackTimer = time.AfterFunc(d, func() { c.Wake(true) })
		return
	}
	c.ackTimer.Reset(d)
}

// park holds a connect: a timer marks it due after its hold time, and the
// flush path answers it then, or earlier if the session ends (or, in
// deliver-only mode, when events are queued). A connect already held on
// this connection is dropped unanswered, as CometD does.
func (c *wsConn) park(x *engine.Exchange) {
	s := x.Session
	h := s.ParkPush(x)
	t := time.AfterFunc(x.Hold, func() {
		if s.HoldExpired(h) {
			c.Wake(true)
		}
	})
	if old := c.holdTimer.Swap(t); old != nil {
		old.Stop()
	}
	c.Wake(false)
}

// Wake schedules a flush of the bound session unless one is pending; see
// flushers for what urgent changes. An urgent wake of a connection already
// waiting to batch makes it jump the queue: the flush it gets then also
// writes what it waited for.
func (c *wsConn) Wake(urgent bool) {
	if c.closed.Load() || c.stalled.Load() && !urgent {
		return // a stalled connection flushes when drained
	}
	if c.scheduled.CompareAndSwap(false, true) {
		if !urgent {
			c.batching.Store(true)
		}
		c.h.flushers.run(c, urgent)
		return
	}
	if urgent && c.batching.CompareAndSwap(true, false) {
		c.h.flushers.run(c, true) // its entry in the batching list flushes nothing later
	}
}

// itemSlices recycles the slices a flush collects queued messages in.
var itemSlices = sync.Pool{New: func() any { s := make([][]byte, 0, 16); return &s }}

// flush writes everything due for the bound session, batching queued
// messages into frames of at most MessagesPerFrame messages and about
// MaxFrameBytes bytes. It runs in its own short-lived goroutine.
func (c *wsConn) flush() {
	c.batching.Store(false)
	c.scheduled.Store(false)
	s := c.bound.Load()
	if s == nil {
		return
	}
	buf := c.h.getBuf()
	defer c.h.putBuf(buf)
	ip := itemSlices.Get().(*[][]byte)
	items := (*ip)[:0]
	defer func() {
		clear(items)
		*ip = items[:0]
		itemSlices.Put(ip)
	}()
	cfg := c.h.cfg.WebSocket
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// While stalled, messages stay in the session's queue, whose bounds
	// cut off a client that does not read; drain flushes again when done.
	for !c.closed.Load() && !c.stalled.Load() {
		events, x := s.Pull(items[:0], cfg.MessagesPerFrame, cfg.MaxFrameBytes)
		if len(events) == 0 && x == nil && len(c.deferred) == 0 {
			break
		}
		out, n := c.openFrame(*buf, events)
		if x != nil {
			if n > 0 {
				out = append(out, ',')
			}
			out = bayeux.AppendMessage(out, x.Reply)
		}
		out = append(out, ']')
		*buf = out
		clear(events)
		items = events
		if !c.writeLocked(out) {
			return
		}
	}
	if s.Closed() && c.bound.Load() == s && !s.InBatch() {
		c.endLocked(s)
	}
}

// endLocked closes the connection of ended session s, after what is
// pending, with a code for why it ended; the caller holds wmu.
func (c *wsConn) endLocked(s *engine.Session) {
	switch s.CloseReason() {
	case engine.CloseDisconnect:
		c.closeLocked(websocket.CloseNormalClosure, "disconnected")
	case engine.CloseShutdown:
		c.closeLocked(websocket.CloseGoingAway, "server shutdown")
	case engine.CloseSlow:
		if !c.closed.Load() {
			c.h.stats.slowClosed.Add(1)
		}
		c.abortLocked(websocket.ClosePolicyViolation, "slow client")
	default:
		c.closeLocked(websocket.CloseNormalClosure, "Destroy")
	}
}

// closeWith sends a close frame with code and reason after what is
// pending (code 0: none, at once) and closes the connection. It is
// idempotent.
func (c *wsConn) closeWith(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closeLocked(code, reason)
}

// Superseded is called when session s, bound to this connection, is
// resumed on another one: this connection stops serving it and closes,
// so that it never believes it still owns the session. Its client, if
// still there, has moved on.
func (c *wsConn) Superseded(s *engine.Session) {
	if c.bound.CompareAndSwap(s, nil) {
		c.closeWith(websocket.CloseNormalClosure, "session resumed on another connection")
	}
}

// finish runs when the reader stops: the session stays alive (a new
// connection may resume it) but is detached and will expire on its own.
func (c *wsConn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	c.closeWith(0, "")
	c.h.conns.remove(c)
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if r := c.wsRelay.Load(); r != nil {
		r.stop()
	}
	if t := c.holdTimer.Load(); t != nil {
		t.Stop()
	}
	if s := c.bound.Load(); s != nil {
		s.Detach(c)
	}
}
