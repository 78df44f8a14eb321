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
	Logger             *slog.Logger
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
	MaxMessageBytes int
	Metadata        map[string]string
	Headers         []string
	Cookies         []string
	Descriptors     string // descriptor-set file; empty: server reflection
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
