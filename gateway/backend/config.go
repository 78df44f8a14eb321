package backend

import (
	"log/slog"
	"time"
)

// Config is the backend layer's configuration. The root package fills it
// from config.Config, whose documentation describes each field.
type Config struct {
	Backends map[string]Spec
	Routes   []RouteSpec
	// AuthBackend names the backend whose Handshake authenticates clients;
	// empty disables the hook.
	AuthBackend string
	AuthTimeout time.Duration
	// MaxCallsPerSession bounds the remote calls one session may have in
	// flight; more fail at once with 429. Default 32.
	MaxCallsPerSession int
	// Reserved lists channels the gateway serves itself (the demo's); a
	// call route matching one is an error.
	Reserved []string
	Logger   *slog.Logger
	// ObserveCall, if not nil, is told the outcome of each remote call
	// (retries included): its route's channel pattern, its backend, its
	// code ("OK", a gRPC code name, or "HTTP 502" for an HTTP backend's
	// status) and how long it took. It must not block.
	ObserveCall func(route, backend, code string, d time.Duration)
}

// Spec describes one backend.
type Spec struct {
	Target          string // gRPC target; exclusive with URL
	URL             string // HTTP endpoint
	TLSMode         string // plaintext, tls, mtls
	CAFile          string
	CertFile        string
	KeyFile         string
	ServerName      string
	Timeout         time.Duration
	RetryAttempts   int
	RetryBackoff    time.Duration
	RetryMaxBackoff time.Duration
	// ReconnectBaseDelay and ReconnectMaxDelay are the connection backoff
	// after a failed attempt (growing 1.6x per failure, with jitter);
	// ReconnectMaxDelay also caps the pause before a broken stream is
	// reopened. ConnectTimeout bounds one connection attempt. Defaults
	// 100ms, 1s and 5s.
	ReconnectBaseDelay time.Duration
	ReconnectMaxDelay  time.Duration
	ConnectTimeout     time.Duration
	MaxMessageBytes    int
	Metadata           map[string]string
	Headers            []string
	Cookies            []string
	Descriptors        string // descriptor-set file; empty: server reflection
	// Required makes the node unready (Router.Unreachable) while this
	// gRPC backend's connection is not ready; it is then connected at
	// Start rather than on first use, and kept connected while idle.
	Required bool
}

// Defaults of a Spec's reconnection settings.
const (
	defaultReconnectBaseDelay = 100 * time.Millisecond
	defaultReconnectMaxDelay  = time.Second
	defaultConnectTimeout     = 5 * time.Second
)

// setDefaults fills the zero reconnection settings.
func (s *Spec) setDefaults() {
	if s.ReconnectBaseDelay <= 0 {
		s.ReconnectBaseDelay = defaultReconnectBaseDelay
	}
	if s.ReconnectMaxDelay <= 0 {
		s.ReconnectMaxDelay = max(defaultReconnectMaxDelay, s.ReconnectBaseDelay)
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = defaultConnectTimeout
	}
}

// Route types.
const (
	TypeCall    = "call"
	TypeStream  = "stream"
	TypePublish = "publish"
)

// RouteSpec binds a channel pattern to a backend.
type RouteSpec struct {
	Channel         string
	Backend         string
	Type            string // call, stream, publish
	Method          string // "pkg.Service/Method"; empty: the contract
	Idempotent      bool
	Timeout         time.Duration
	Request         []byte // JSON request of a dynamic stream
	ChannelTemplate string
}
