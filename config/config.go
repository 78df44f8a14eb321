// Package config holds Cometgate's configuration model: plain structs with
// YAML tags, the documented defaults, strict loading, environment overrides
// and validation errors that name the field and the bad value.
//
// The zero value of every field means "use the default"; the default is
// stated on each field and applied in one place, [Config.SetDefaults].
// Booleans whose default is true are pointers so that an explicit false
// can be told apart from "not set".
package config

import (
	"errors"
	"fmt"
	"time"
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the TCP address of the public HTTP listener.
	// Default "127.0.0.1:8080". Environment: COMETGATE_LISTEN.
	Listen string `yaml:"listen"`
	// Path is where the Bayeux endpoint is mounted; sub-paths such as
	// /cometd/handshake are accepted too. Default "/cometd".
	Path string `yaml:"path"`
	// ShutdownTimeout bounds a graceful shutdown. Default 10s.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`

	Log        LogConfig        `yaml:"log"`
	Bayeux     BayeuxConfig     `yaml:"bayeux"`
	Limits     LimitsConfig     `yaml:"limits"`
	Transports TransportsConfig `yaml:"transports"`
	Cookie     CookieConfig     `yaml:"cookie"`
	// TLS serves the public listener over HTTPS. Default mode off.
	TLS        TLSConfig        `yaml:"tls"`
	CORS       CORSConfig       `yaml:"cors"`
	Extensions ExtensionsConfig `yaml:"extensions"`
	Demo       DemoConfig       `yaml:"demo"`

	// Backends are the services channels can be bound to, by name.
	Backends map[string]BackendConfig `yaml:"backends"`
	// Routes bind channels to backends. Where several routes of one type
	// match a channel, the most specific wins (an exact name, then the
	// longest prefix, "*" before "**"); two routes of one type with the same
	// channel are an error.
	Routes []RouteConfig `yaml:"routes"`
	// Auth sends handshakes to a backend's Handshake method.
	Auth AuthConfig `yaml:"auth"`
	// API is the control API for services and operators.
	API APIConfig `yaml:"api"`
	// Debug exposes runtime profiles.
	Debug DebugConfig `yaml:"debug"`
	// Metrics configures the Prometheus endpoint, /metrics.
	Metrics MetricsConfig `yaml:"metrics"`
	// Plugins are the filters, policies, authenticators and listeners on
	// the message path.
	Plugins PluginsConfig `yaml:"plugins"`
	// Cluster shares channels and sessions with other nodes over NATS.
	// Default broker memory (one node).
	Cluster ClusterConfig `yaml:"cluster"`
}

// MetricsConfig configures /metrics, which the control API's listener
// always serves (behind the API's authentication).
type MetricsConfig struct {
	// Public also serves /metrics on the public listener, without
	// authentication. Default false.
	Public bool `yaml:"public"`
}

// DebugConfig exposes Go's pprof profiles (/debug/pprof/) for measuring the
// gateway.
type DebugConfig struct {
	// Listen is a loopback address serving /debug/pprof/; empty (the
	// default) serves nothing. Environment: COMETGATE_DEBUG_LISTEN.
	Listen string `yaml:"listen"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is one of debug, info, warn, error. Default "info".
	// Environment: COMETGATE_LOG_LEVEL.
	Level string `yaml:"level"`
	// Format is "text" or "json". Default "text".
	// Environment: COMETGATE_LOG_FORMAT.
	Format string `yaml:"format"`
}

// BayeuxConfig holds the protocol engine settings. Names follow CometD's
// server parameters where one exists.
type BayeuxConfig struct {
	// Timeout is how long a /meta/connect is held when nothing is queued.
	// Default 20s (CometD 8). Environment: COMETGATE_TIMEOUT.
	Timeout Duration `yaml:"timeout"`
	// Interval is the advised pause between a connect reply and the next
	// connect. Default 0.
	Interval Duration `yaml:"interval"`
	// MaxInterval is how long a session may go without a /meta/connect
	// before it is expired. Default 10s.
	MaxInterval Duration `yaml:"maxInterval"`
	// SweepPeriod is how often expired sessions are looked for. Default 1s.
	SweepPeriod Duration `yaml:"sweepPeriod"`
	// MaxQueue bounds the messages queued for one session; a session whose
	// queue overflows is disconnected as slow. Default 1000.
	MaxQueue int `yaml:"maxQueue"`
	// MaxQueueBytes bounds the encoded bytes queued for one session, with
	// the same overflow rule. Default 4 MiB.
	MaxQueueBytes int `yaml:"maxQueueBytes"`
	// BroadcastToPublisher delivers a client's broadcast back to itself when
	// it is subscribed. Default true.
	BroadcastToPublisher *bool `yaml:"broadcastToPublisher"`
	// MetaConnectDeliverOnly sends events only in /meta/connect replies,
	// never piggybacked on other replies. Default false.
	MetaConnectDeliverOnly bool `yaml:"metaConnectDeliverOnly"`
	// MaxSessionsPerBrowser is how many sessions of one browser (one
	// BAYEUX_BROWSER cookie) may hold a long poll at once; the others get
	// the multiple-clients advice. -1 means unlimited. Default 1.
	MaxSessionsPerBrowser int `yaml:"maxSessionsPerBrowser"`
	// HTTP2MaxSessionsPerBrowser replaces MaxSessionsPerBrowser for
	// long polls that arrive over HTTP/2, which does not use up the
	// browser's connection limit (CometD's http2MaxSessionsPerBrowser).
	// -1 means unlimited. Default -1.
	HTTP2MaxSessionsPerBrowser int `yaml:"http2MaxSessionsPerBrowser"`
	// MultiSessionInterval is the advised interval for the extra sessions
	// of one browser. A negative value refuses them (reconnect "none").
	// Default 2s.
	MultiSessionInterval Duration `yaml:"multiSessionInterval"`
	// TrustClientSession accepts a clientId even when the BAYEUX_BROWSER
	// cookie is missing or does not match, on every transport (a websocket
	// upgrade carries the cookie too). Default false.
	TrustClientSession bool `yaml:"trustClientSession"`
	// ConnectionTypes are the transports advertised in handshake replies, in
	// order of preference. Allowed: websocket, long-polling,
	// callback-polling. A transport not listed is refused.
	// Default [websocket, long-polling, callback-polling].
	ConnectionTypes []string `yaml:"connectionTypes"`
	// DuplicateConnectStatus is the HTTP status that ends a held long poll
	// superseded by a newer /meta/connect of the same session. Default 500.
	DuplicateConnectStatus int `yaml:"duplicateConnectStatus"`
}

// LimitsConfig bounds what one request may carry, and what one session
// may hold.
type LimitsConfig struct {
	// MaxRequestBytes bounds an HTTP request body or a websocket frame, in
	// bytes; a larger body is answered with HTTP 413 (websocket: close
	// 1009). Default 256 KiB.
	MaxRequestBytes int `yaml:"maxRequestBytes"`
	// MaxBatch bounds the number of messages in one request or frame; a
	// larger batch is answered with HTTP 413. Default 256.
	MaxBatch int `yaml:"maxBatch"`
	// MaxSubscriptionsPerSession bounds the channels one session may be
	// subscribed to (each costs memory for the session's life); a
	// /meta/subscribe that would go past it is refused whole with
	// 403:per_session:subscription_limit. Default 1000.
	MaxSubscriptionsPerSession int `yaml:"maxSubscriptionsPerSession"`
	// MaxChannelsPerSubscribe bounds the channels one /meta/subscribe
	// message may name; a longer list is refused whole with
	// 403:per_message:subscription_limit. Default 100.
	MaxChannelsPerSubscribe int `yaml:"maxChannelsPerSubscribe"`
	// MaxConnectionsPerAddress bounds the connections one remote IP may
	// hold open on the public listener (websockets, held long polls and
	// idle keep-alive connections alike); more are answered 503 and
	// closed, counted and logged. Behind a NAT many users share an
	// address: size it for that. Default 0 (off).
	MaxConnectionsPerAddress int `yaml:"maxConnectionsPerAddress"`
}

// TransportsConfig holds per-transport settings.
type TransportsConfig struct {
	WebSocket       WebSocketConfig       `yaml:"websocket"`
	CallbackPolling CallbackPollingConfig `yaml:"callbackPolling"`
}

// WebSocketConfig tunes the websocket transport.
type WebSocketConfig struct {
	// ReadBufferSize is the per-connection read buffer, in bytes; larger
	// frames are still read whole, in more system calls. Default 512.
	ReadBufferSize int `yaml:"readBufferSize"`
	// WriteBufferSize is the size of the pooled write buffers, in bytes; an
	// idle connection holds none. Default 4096.
	WriteBufferSize int `yaml:"writeBufferSize"`
	// PingInterval is how often the server pings a connection that has a
	// reader goroutine (Poller off, or not Linux); polled connections, TLS included, are not
	// pinged. Default 25s.
	PingInterval Duration `yaml:"pingInterval"`
	// IdleTimeout closes a connection from which nothing (not even a pong)
	// arrived for this long. Default 60s; must exceed pingInterval.
	IdleTimeout Duration `yaml:"idleTimeout"`
	// WriteTimeout is the longest a connection whose socket is full may
	// go without accepting more bytes before it is closed as too slow.
	// Default 10s.
	WriteTimeout Duration `yaml:"writeTimeout"`
	// MaxPendingBytes bounds what a connection whose socket is full keeps
	// besides its session's queue (the frame it was writing and replies to
	// its own requests); over it, the connection is closed as too slow
	// (close 1008). Default 1 MiB.
	MaxPendingBytes int `yaml:"maxPendingBytes"`
	// MessagesPerFrame bounds how many queued messages go in one frame.
	// 0 means as many as are queued (up to MaxFrameBytes). Default 0.
	MessagesPerFrame int `yaml:"messagesPerFrame"`
	// FlushDelay is how long queued messages wait for others before a
	// frame is written: that much added latency buys fewer, larger frames
	// under load (1,000 subscribers at 1,000 msg/s: p99 31 ms with 500µs,
	// 62-93 ms without). Answers to one session alone are written at once.
	// Default 500µs; a negative value writes at once.
	FlushDelay Duration `yaml:"flushDelay"`
	// AnswerWait is the longest a remote call's publish reply waits for
	// the call's answer, so that both go in one frame (one write instead
	// of two); an answer that comes later follows on its own. The wait
	// delays only the acknowledgement, never the answer, and clients
	// match the answer by its id. Keep it well below the clients' own
	// reply timeout (CometD's maxNetworkDelay, 10s). Default 100ms; a
	// negative value sends the reply at once.
	AnswerWait Duration `yaml:"answerWait"`
	// MaxFrameBytes bounds the size of one outgoing frame built from queued
	// messages (a single larger message is still sent alone).
	// Default 64 KiB.
	MaxFrameBytes int `yaml:"maxFrameBytes"`
	// Subprotocol, when set, is required from clients at upgrade (CometD's
	// ws.protocol). Default "" (none required).
	Subprotocol string `yaml:"subprotocol"`
	// Compression enables permessage-deflate. Default false.
	Compression bool `yaml:"compression"`
	// HandshakeTimeout closes a connection that has not handshaken a
	// session within this time after its upgrade (close 1008), so that
	// silent connections cannot pile up. Default 10s.
	HandshakeTimeout Duration `yaml:"handshakeTimeout"`
	// RequireHandshakePerConnection makes every websocket connection
	// handshake its own session: a clientId handshaken on another
	// connection is refused (402) even with the right BAYEUX_BROWSER
	// cookie, as CometD's ws.requireHandshakePerConnection. Default false.
	RequireHandshakePerConnection bool `yaml:"requireHandshakePerConnection"`
	// Poller watches idle connections with one epoll instance (Linux)
	// instead of a reader goroutine each, which saves most of an idle
	// session's memory. Server pings are then not sent: the Bayeux connect
	// cycle is the heartbeat and dead peers end with their session's
	// expiry. Default true.
	Poller *bool `yaml:"poller"`
}

// CallbackPollingConfig tunes the JSONP transport.
type CallbackPollingConfig struct {
	// CallbackParameter is the query parameter naming the callback.
	// Default "jsonp".
	CallbackParameter string `yaml:"callbackParameter"`
	// MaxCallbackLength bounds the callback name. Default 64.
	MaxCallbackLength int `yaml:"maxCallbackLength"`
}

// CookieConfig shapes the BAYEUX_BROWSER cookie that binds HTTP sessions to
// one browser.
type CookieConfig struct {
	// Name of the cookie. Default "BAYEUX_BROWSER".
	Name string `yaml:"name"`
	// Path of the cookie. Default "/".
	Path string `yaml:"path"`
	// Domain of the cookie. Default "" (host only).
	Domain string `yaml:"domain"`
	// MaxAge in seconds; 0 means a session cookie. Default 0.
	MaxAge int `yaml:"maxAge"`
	// Secure adds the Secure attribute on TLS requests. Default false.
	Secure bool `yaml:"secure"`
	// HTTPOnly adds the HttpOnly attribute. Default true.
	HTTPOnly *bool `yaml:"httpOnly"`
	// SameSite is "", "lax", "strict" or "none". Default "" (omitted).
	SameSite string `yaml:"sameSite"`
}

// CORSConfig lists the origins allowed to use the Bayeux endpoint from
// another origin: CORS headers for long-polling and the Origin check of the
// websocket upgrade. Same-origin requests are always allowed.
type CORSConfig struct {
	// AllowedOrigins are exact origins ("https://app.example") or "*" for
	// any. Default none. Environment: COMETGATE_ALLOWED_ORIGINS
	// (comma-separated).
	AllowedOrigins []string `yaml:"allowedOrigins"`
	// MaxAge is how long browsers may cache a preflight answer.
	// Default 10m.
	MaxAge Duration `yaml:"maxAge"`
}

// ExtensionsConfig switches the server side of Bayeux extensions.
type ExtensionsConfig struct {
	// Ack enables the acknowledged-delivery extension ("ack").
	// Default true.
	Ack *bool `yaml:"ack"`
	// Timesync enables the time synchronisation extension ("timesync").
	// Default true.
	Timesync *bool `yaml:"timesync"`
	// Timestamp stamps every message the server sends with a top-level
	// "timestamp" field, as CometD's TimestampExtension. Default false.
	Timestamp *bool `yaml:"timestamp"`
}

// DemoConfig controls the built-in demo: the chat page at "/", and the
// demo services /service/members, /service/privatechat and /service/echo.
type DemoConfig struct {
	// Enabled serves the demo. Default true. Environment: COMETGATE_DEMO.
	Enabled *bool `yaml:"enabled"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("20s", "1m30s") or as an integer number of milliseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Bool returns a pointer to b, for the optional boolean fields.
func Bool(b bool) *bool { return &b }

// FieldError reports one invalid field.
type FieldError struct {
	Field  string // dotted YAML path, e.g. "bayeux.timeout"
	Value  any    // the offending value
	Reason string // what is wrong, e.g. "must be > 0"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Field, e.Value, e.Reason)
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")
