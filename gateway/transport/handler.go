package transport

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/internal/workers"
	"github.com/gorilla/websocket"
)

// Handler serves the Bayeux endpoint for one Engine over every enabled
// transport.
type Handler struct {
	e        *engine.Engine
	cfg      Config               // its Live fields are read from live instead
	live     atomic.Pointer[Live] // immutable; replaced by SetLive
	browsers browsers
	h2Polls  browsers // the same for long polls over HTTP/2 (HTTP2MaxSessionsPerBrowser)
	upgrader websocket.Upgrader
	polled   websocket.Upgrader // for connections watched by the poller
	poller   *poller            // nil: a reader goroutine per connection
	conns    connSet            // open websocket connections, for shutdown
	flushers flushers           // goroutines that write queued messages
	// handshakes closes connections that do not handshake in time.
	handshakes handshakeClock
	// minted are the browser ids made for websocket upgrades lately.
	minted minted
	bufs   sync.Pool
	// workers read and process frames (readable, readLoop).
	workers *workers.Pool
	stats   handlerStats
	// relay carries other nodes' sessions' polls to them (SetRelay); nil
	// on a single node. maxHold bounds a relayed connect's hold.
	relay   Relay
	maxHold time.Duration
	// closing ends relayed held connects (Shutdown calls close).
	closing context.Context
	close   context.CancelFunc
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler serving e.
func NewHandler(e *engine.Engine, cfg Config) *Handler {
	cfg.setDefaults()
	h := &Handler{
		e:          e,
		cfg:        cfg,
		browsers:   browsers{max: cfg.MaxSessionsPerBrowser, held: make(map[string]map[string]int)},
		h2Polls:    browsers{max: cfg.HTTP2MaxSessionsPerBrowser, held: make(map[string]map[string]int)},
		conns:      connSet{m: make(map[*wsConn]struct{})},
		bufs:       sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }},
		flushers:   flushers{delay: cfg.WebSocket.FlushDelay},
		handshakes: handshakeClock{timeout: cfg.WebSocket.HandshakeTimeout},
		minted:     minted{max: 65536},
		workers:    workers.New(nil),
	}
	h.live.Store(new(cfg.live()))
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:    cfg.WebSocket.ReadBufferSize,
		WriteBufferSize:   cfg.WebSocket.WriteBufferSize,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: cfg.WebSocket.Compression,
		CheckOrigin:       h.originAllowed,
	}
	if p := cfg.WebSocket.Subprotocol; p != "" {
		h.upgrader.Subprotocols = []string{p}
	}
	if cfg.WebSocket.Poller {
		p, err := newPoller()
		if err != nil {
			cfg.Logger.Info("websocket poller unavailable; one reader goroutine per connection", "err", err)
		} else {
			h.poller = p
			h.polled = h.upgrader
			h.polled.ReadBufferSize = 0 // use the reader readerHijacker provides
		}
	}
	return h
}

// SetLive replaces the settings of Live while the handler serves; zero
// values mean the defaults. They apply to the requests, upgrades and
// websocket frames that start after SetLive returns; an open websocket
// connection keeps the frame size limit (MaxRequestBytes) it was upgraded
// with. Sessions,
// connections and held connects are untouched. Safe for concurrent use.
func (h *Handler) SetLive(l Live) {
	c := Config{
		MaxRequestBytes: l.MaxRequestBytes, MaxBatch: l.MaxBatch, Cookie: l.Cookie,
		TrustClientSession: l.TrustClientSession, MultiSessionInterval: l.MultiSessionInterval,
		AllowedOrigins: l.AllowedOrigins, CORSMaxAge: l.CORSMaxAge,
	}
	c.setDefaults()
	h.live.Store(new(c.live()))
}

func (h *Handler) allowed(t string) bool { return slices.Contains(h.cfg.ConnectionTypes, t) }

// ServeHTTP routes a request to its transport by shape.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodOptions:
		h.preflight(w, r)
	case websocket.IsWebSocketUpgrade(r) && h.allowed(WebSocket):
		h.serveWebSocket(w, r)
	case r.Method == http.MethodGet && h.allowed(CallbackPolling) && h.callback(r) != "":
		h.servePoll(w, r, true)
	case r.Method == http.MethodPost && h.allowed(LongPolling):
		h.servePoll(w, r, false)
	default:
		h.badRequest(w, r, "Unknown Bayeux Transport", nil)
	}
}

// badRequest answers a request that cannot be processed at all, logging
// the cause once at debug level.
func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, msg string, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, bayeux.ErrBatchTooLarge) || isTooLarge(err) {
		status = http.StatusRequestEntityTooLarge
		h.stats.tooLarge.Add(1)
	}
	h.cfg.Logger.Debug("bad bayeux request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "status", status, "reason", msg, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// Shutdown writes what is due on every websocket connection (after
// engine.Close, that is each held connect's reply with its re-handshake
// advice) and closes it with 1001 (going away), and asks the owners of
// the connects it relayed and that are held to answer them now. Call it
// after engine.Close.
func (h *Handler) Shutdown() {
	if h.close != nil {
		// Relayed held connects are answered by their owners at once.
		h.close()
	}
	for _, c := range h.conns.snapshot() {
		c.flush()
		c.closeWith(websocket.CloseGoingAway, "server shutdown")
	}
	if h.poller != nil {
		h.poller.close()
	}
}

type connSet struct {
	mu     sync.Mutex // guards m, closed
	m      map[*wsConn]struct{}
	closed int64 // bytes written on the connections removed from m
}

func (s *connSet) add(c *wsConn) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *wsConn) {
	s.mu.Lock()
	if _, ok := s.m[c]; ok {
		delete(s.m, c)
		s.closed += c.written.Load()
	}
	s.mu.Unlock()
}

// written returns the bytes written on every connection, open or closed.
func (s *connSet) written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.closed
	for c := range s.m {
		n += c.written.Load()
	}
	return n
}

func (s *connSet) snapshot() []*wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*wsConn, 0, len(s.m))
	for c := range s.m {
		list = append(list, c)
	}
	return list
}

// Len returns the number of open websocket connections.
func (h *Handler) Len() int {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return len(h.conns.m)
}

func (h *Handler) getBuf() *[]byte { return h.bufs.Get().(*[]byte) }

func (h *Handler) putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return // do not keep what a huge response grew
	}
	*b = (*b)[:0]
	h.bufs.Put(b)
}

// handshakeNotAlone reports a batch that carries a handshake with other
// messages, which the protocol forbids.
func handshakeNotAlone(msgs []bayeux.Message) bool {
	if len(msgs) < 2 {
		return false
	}
	for i := range msgs {
		if msgs[i].Channel == bayeux.MetaHandshake {
			return true
		}
	}
	return false
}

// handlerStats are cumulative counters of a Handler.
type handlerStats struct {
	slowClosed        atomic.Int64 // websocket connections cut off as too slow
	handshakeTimeouts atomic.Int64 // websocket connections closed for not handshaking in time

	wsOpened       atomic.Int64                      // websocket connections upgraded
	wsClosed       [len(closeCodes) + 1]atomic.Int64 // websocket connections closed, by closeCodes index (last: other)
	pollBytes      atomic.Int64                      // bytes of long-polling and callback-polling responses
	browserLimited atomic.Int64                      // connects refused by MaxSessionsPerBrowser
	tooLarge       atomic.Int64                      // requests refused by MaxRequestBytes or MaxBatch
	origins        refusals                          // requests refused for their Origin
}

// HandshakeTimeouts returns how many websocket connections were closed
// because no session was handshaken on them within HandshakeTimeout.
func (h *Handler) HandshakeTimeouts() int64 { return h.stats.handshakeTimeouts.Load() }

// SlowClosed returns how many websocket connections were cut off because
// their client did not read fast enough (queue or pending-bytes bound, or
// no write progress within WriteTimeout).
func (h *Handler) SlowClosed() int64 { return h.stats.slowClosed.Load() }
