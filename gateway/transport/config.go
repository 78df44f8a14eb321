package transport

import (
	"log/slog"
	"slices"
	"time"
)

// Connection type names.
const (
	WebSocket       = "websocket"
	LongPolling     = "long-polling"
	CallbackPolling = "callback-polling"
)

// Config holds the transport settings; zero values mean the defaults stated.
type Config struct {
	// ConnectionTypes are the transports served. Default all three.
	ConnectionTypes []string
	// MaxRequestBytes bounds a request body or frame. Default 256 KiB.
	MaxRequestBytes int
	// MaxBatch bounds messages per request or frame. Default 256.
	MaxBatch int
	// Cookie shapes the BAYEUX_BROWSER cookie.
	Cookie CookieConfig
	// TrustClientSession accepts a clientId without a matching cookie.
	TrustClientSession bool
	// MaxSessionsPerBrowser is how many long polls one browser may hold;
	// -1 means unlimited. Default 1.
	MaxSessionsPerBrowser int
	// HTTP2MaxSessionsPerBrowser replaces MaxSessionsPerBrowser for long
	// polls over HTTP/2, which do not use up the browser's connection
	// limit; -1 means unlimited. Default -1.
	HTTP2MaxSessionsPerBrowser int
	// MultiSessionInterval is the interval advised to extra sessions of a
	// browser; negative refuses them. Default 2s.
	MultiSessionInterval time.Duration
	// DuplicateConnectStatus ends a superseded held long poll. Default 500.
	DuplicateConnectStatus int
	// AllowedOrigins lists origins (or "*") allowed cross-origin.
	AllowedOrigins []string
	// CORSMaxAge is the preflight cache lifetime. Default 10m.
	CORSMaxAge time.Duration
	// CallbackParameter names the JSONP callback parameter. Default "jsonp".
	CallbackParameter string
	// MaxCallbackLength bounds the callback name. Default 64.
	MaxCallbackLength int
	// WebSocket tunes the websocket transport.
	WebSocket WebSocketConfig
	// KeepHeaders lists the upgrade request headers a websocket session
	// keeps for publish handlers and backends (engine.Client.Header); the
	// others are dropped. HTTP requests always carry all their headers.
	KeepHeaders []string
	// Logger receives debug logs of bad input. Default slog.Default().
	Logger *slog.Logger
	// AnswerLatency, if not nil, is told how long after a message was
	// queued for a session whose long-polling connect was held that
	// connect's response was written: the delivery latency of
	// long-polling on the server's side. It must not block.
	AnswerLatency func(time.Duration)
}

// Live are the transport settings that Handler.SetLive changes while
// running; zero values mean the defaults of the Config fields of the same
// names.
type Live struct {
	MaxRequestBytes      int           // Config.MaxRequestBytes
	MaxBatch             int           // Config.MaxBatch
	Cookie               CookieConfig  // Config.Cookie
	TrustClientSession   bool          // Config.TrustClientSession
	MultiSessionInterval time.Duration // Config.MultiSessionInterval
	AllowedOrigins       []string      // Config.AllowedOrigins
	CORSMaxAge           time.Duration // Config.CORSMaxAge
}

// live returns c's live-changeable part, sharing nothing with c.
func (c *Config) live() Live {
	return Live{
		MaxRequestBytes: c.MaxRequestBytes, MaxBatch: c.MaxBatch, Cookie: c.Cookie,
		TrustClientSession: c.TrustClientSession, MultiSessionInterval: c.MultiSessionInterval,
		AllowedOrigins: slices.Clone(c.AllowedOrigins), CORSMaxAge: c.CORSMaxAge,
	}
}

// CookieConfig shapes the BAYEUX_BROWSER cookie.
type CookieConfig struct {
	Name     string // default BAYEUX_BROWSER
	Path     string // default "/"
	Domain   string
	MaxAge   int
	Secure   bool // added on TLS requests only
	HTTPOnly bool
	SameSite string // "", lax, strict, none
}

// WebSocketConfig tunes the websocket transport.
type WebSocketConfig struct {
	ReadBufferSize   int           // default 512
	WriteBufferSize  int           // pooled; default 4096
	PingInterval     time.Duration // default 25s
	IdleTimeout      time.Duration // default 60s
	WriteTimeout     time.Duration // longest a full socket may take no bytes; default 10s
	MessagesPerFrame int           // 0: unlimited
	MaxFrameBytes    int           // default 64 KiB
	MaxPendingBytes  int           // owed by a full socket besides the session queue; default 1 MiB
	Subprotocol      string        // required subprotocol, "" for none
	Compression      bool
	// HandshakeTimeout closes a connection with no session after this
	// long. Default 10s.
	HandshakeTimeout time.Duration
	// RequireHandshakePerConnection refuses to resume a session on a new
	// connection: each connection must handshake its own session.
	RequireHandshakePerConnection bool
	// FlushDelay is how long queued messages wait for company before a
	// frame is written, trading that much latency for fewer, larger frames
	// (fewer system calls on both sides) under load. 0 writes at once.
	FlushDelay time.Duration
	// AnswerWait is the longest a remote call's publish reply waits for
	// the call's answer (see engine.Exchange.AnswerFollows), so that both
	// share a frame. 0 replies at once.
	AnswerWait time.Duration
	// Poller watches idle connections with epoll (Linux) instead of a
	// reader goroutine each; server pings are then not sent (the Bayeux
	// connect cycle is the heartbeat, and dead peers end with their
	// session's expiry). TLS connections over TCP are polled too.
	Poller bool
}

func (c *Config) setDefaults() {
	if len(c.ConnectionTypes) == 0 {
		c.ConnectionTypes = []string{WebSocket, LongPolling, CallbackPolling}
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 256 << 10
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "BAYEUX_BROWSER"
	}
	if c.Cookie.Path == "" {
		c.Cookie.Path = "/"
	}
	if c.MaxSessionsPerBrowser == 0 {
		c.MaxSessionsPerBrowser = 1
	}
	if c.HTTP2MaxSessionsPerBrowser == 0 {
		c.HTTP2MaxSessionsPerBrowser = -1
	}
	if c.MultiSessionInterval == 0 {
		c.MultiSessionInterval = 2 * time.Second
	}
	if c.DuplicateConnectStatus == 0 {
		c.DuplicateConnectStatus = 500
	}
	if c.CORSMaxAge == 0 {
		c.CORSMaxAge = 10 * time.Minute
	}
	if c.CallbackParameter == "" {
		c.CallbackParameter = "jsonp"
	}
	if c.MaxCallbackLength == 0 {
		c.MaxCallbackLength = 64
	}
	w := &c.WebSocket
	if w.ReadBufferSize <= 0 {
		w.ReadBufferSize = 512
	}
	if w.WriteBufferSize <= 0 {
		w.WriteBufferSize = 4096
	}
	if w.PingInterval <= 0 {
		w.PingInterval = 25 * time.Second
	}
	if w.IdleTimeout <= 0 {
		w.IdleTimeout = 60 * time.Second
	}
	if w.WriteTimeout <= 0 {
		w.WriteTimeout = 10 * time.Second
	}
	if w.MaxFrameBytes <= 0 {
		w.MaxFrameBytes = 64 << 10
	}
	if w.HandshakeTimeout <= 0 {
		w.HandshakeTimeout = 10 * time.Second
	}
	if w.MaxPendingBytes <= 0 {
		w.MaxPendingBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
