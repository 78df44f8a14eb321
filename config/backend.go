package config

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// BackendConfig is one backend: a gRPC target or a legacy HTTP endpoint.
type BackendConfig struct {
	// Target is a gRPC target, e.g. "127.0.0.1:9090" or "dns:///svc:9090".
	// Exactly one of Target and URL is set.
	Target string `yaml:"target"`
	// URL is an http(s) endpoint of a legacy service: a remote call POSTs the
	// message data as JSON to it and the JSON response is the reply; a status
	// >= 400 is a failed reply. Only call routes may use it.
	URL string `yaml:"url"`
	// TLS selects plaintext (default), server-authenticated TLS or mTLS.
	TLS BackendTLSConfig `yaml:"tls"`
	// Timeout bounds each call; a route or the client (ext.timeout, in ms)
	// may ask for less. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// Retry applies to calls on routes marked idempotent.
	Retry RetryConfig `yaml:"retry"`
	// Reconnect bounds how long a connection and its streams take to come
	// back after the backend was unreachable (gRPC backends only).
	Reconnect ReconnectConfig `yaml:"reconnect"`
	// MaxMessageBytes bounds a request or response message. Default 4 MiB.
	MaxMessageBytes int `yaml:"maxMessageBytes"`
	// Metadata is added to every call (gRPC metadata or HTTP headers).
	Metadata map[string]string `yaml:"metadata"`
	// Headers lists the client's HTTP request headers forwarded as metadata
	// (lower-cased names). Default none.
	Headers []string `yaml:"headers"`
	// Cookies lists the client's cookies forwarded, as a "cookie" metadata
	// entry holding only those cookies. Default none.
	Cookies []string `yaml:"cookies"`
	// Descriptors is a FileDescriptorSet file (protoc --include_imports
	// --descriptor_set_out) describing the methods routes name; when empty,
	// the methods are read from the backend's server reflection.
	Descriptors string `yaml:"descriptors"`
	// Required makes /readyz answer 503 while this backend is unreachable
	// (its connection is not ready); it is then connected at start rather
	// than on first use. gRPC backends only. Default false.
	Required bool `yaml:"required"`
}

// BackendTLSConfig configures the connection to a backend.
type BackendTLSConfig struct {
	// Mode is "plaintext" (default), "tls" or "mtls".
	Mode string `yaml:"mode"`
	// CAFile is a PEM bundle to verify the backend; default the system
	// roots.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are the client certificate for mTLS.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ServerName overrides the name verified in the backend's certificate.
	ServerName string `yaml:"serverName"`
}

// RetryConfig retries idempotent calls that failed as unavailable.
type RetryConfig struct {
	// MaxAttempts counts the first try. Default 3.
	MaxAttempts int `yaml:"maxAttempts"`
	// InitialBackoff is the first pause, doubled each retry with jitter.
	// Default 100ms.
	InitialBackoff Duration `yaml:"initialBackoff"`
	// MaxBackoff caps the pause. Default 1s.
	MaxBackoff Duration `yaml:"maxBackoff"`
}

// ReconnectConfig is the connection backoff of a gRPC backend. After a
// failed connection attempt the next one waits BaseDelay, growing 1.6
// times per further failure (with 20% jitter) up to MaxDelay, so that a
// backend that is reachable again is reconnected within about MaxDelay
// however long it was down (gRPC's own default grows to 120s). While the
// backend is unreachable, remote calls fail at once with
// "503:Unavailable:backend unavailable"; streams wait for the connection
// and reopen as soon as it is back.
type ReconnectConfig struct {
	// BaseDelay is the pause after the first failed attempt. Default
	// 100ms.
	BaseDelay Duration `yaml:"baseDelay"`
	// MaxDelay caps the pause between attempts, and the pause before a
	// broken stream is reopened. Default 1s.
	MaxDelay Duration `yaml:"maxDelay"`
	// ConnectTimeout bounds one connection attempt (TCP and TLS
	// handshakes), so that an attempt started while the backend's host
	// dropped packets does not outlast the outage by long. Default 5s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
}

// RouteConfig binds a channel or channel pattern to a backend.
type RouteConfig struct {
	// Channel is a channel name or a "*"/"**" pattern. Call routes need a
	// /service/ channel; stream and publish routes a broadcast one.
	Channel string `yaml:"channel"`
	// Backend names an entry of backends.
	Backend string `yaml:"backend"`
	// Type is "call" (a remote call, the default for /service/ channels),
	// "stream" (the backend feeds the channel; the default for broadcast
	// channels) or "publish" (client publishes go to the backend first).
	Type string `yaml:"type"`
	// Method is a fully qualified gRPC method ("pkg.Service/Method") bound
	// without code generation, through reflection or the backend's
	// descriptor set. Empty means the Cometgate backend contract
	// (cometgate.backend.v1.Backend).
	Method string `yaml:"method"`
	// Idempotent lets calls on this route be retried.
	Idempotent bool `yaml:"idempotent"`
	// Timeout overrides the backend's timeout for this route.
	Timeout Duration `yaml:"timeout"`
	// Request is the request sent when a stream route with a Method opens
	// its stream, written as YAML and sent as JSON. Default {}.
	Request map[string]any `yaml:"request"`
	// ChannelTemplate maps each message of a stream route with a Method to
	// a channel by filling "{field}" placeholders from the message's JSON
	// fields, e.g. "/stocks/{symbol}". Default: the route's channel, which
	// must then not be a pattern.
	ChannelTemplate string `yaml:"channelTemplate"`
}

// AuthConfig names the backend whose Handshake method authenticates
// clients.
type AuthConfig struct {
	// Backend names an entry of backends; empty disables the hook.
	Backend string `yaml:"backend"`
	// Timeout bounds the Handshake call. Default 5s.
	Timeout Duration `yaml:"timeout"`
}

// Route types.
const (
	RouteCall    = "call"
	RouteStream  = "stream"
	RoutePublish = "publish"
)

func (c *Config) setBackendDefaults() {
	for name, b := range c.Backends {
		setDur(&b.Timeout, 5*time.Second)
		setInt(&b.MaxMessageBytes, 4<<20)
		setStr(&b.TLS.Mode, "plaintext")
		setInt(&b.Retry.MaxAttempts, 3)
		setDur(&b.Retry.InitialBackoff, 100*time.Millisecond)
		setDur(&b.Retry.MaxBackoff, time.Second)
		setDur(&b.Reconnect.BaseDelay, 100*time.Millisecond)
		setDur(&b.Reconnect.MaxDelay, time.Second)
		setDur(&b.Reconnect.ConnectTimeout, 5*time.Second)
		c.Backends[name] = b
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Type == "" {
			if strings.HasPrefix(r.Channel, "/service/") {
				r.Type = RouteCall
			} else {
				r.Type = RouteStream
			}
		}
	}
	setDur(&c.Auth.Timeout, 5*time.Second)
}

func (c *Config) validateBackends(bad func(field string, value any, reason string)) {
	names := make([]string, 0, len(c.Backends))
	for name := range c.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := c.Backends[name]
		f := "backends." + name
		switch {
		case b.Target == "" && b.URL == "":
			bad(f, name, "needs target (gRPC) or url (HTTP)")
		case b.Target != "" && b.URL != "":
			bad(f, name, "target and url are exclusive")
		}
		if b.Required && b.URL != "" {
			bad(f+".required", b.Required, "applies only to gRPC backends (target)")
		}
		if b.URL != "" {
			if u, err := url.Parse(b.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(f+".url", b.URL, "must be an http:// or https:// URL")
			}
		}
		switch b.TLS.Mode {
		case "plaintext", "tls":
		case "mtls":
			if b.TLS.CertFile == "" || b.TLS.KeyFile == "" {
				bad(f+".tls", b.TLS.Mode, "mtls needs certFile and keyFile")
			}
		default:
			bad(f+".tls.mode", b.TLS.Mode, "must be plaintext, tls or mtls")
		}
		if b.Timeout <= 0 {
			bad(f+".timeout", b.Timeout, "must be > 0")
		}
		if b.MaxMessageBytes < 1024 {
			bad(f+".maxMessageBytes", b.MaxMessageBytes, "must be >= 1024")
		}
		if b.Retry.MaxAttempts < 1 || b.Retry.MaxAttempts > 10 {
			bad(f+".retry.maxAttempts", b.Retry.MaxAttempts, "must be between 1 and 10")
		}
		switch rc := b.Reconnect; {
		case rc.BaseDelay <= 0:
			bad(f+".reconnect.baseDelay", rc.BaseDelay, "must be > 0")
		case rc.MaxDelay < rc.BaseDelay:
			bad(f+".reconnect.maxDelay", rc.MaxDelay, "must be >= reconnect.baseDelay")
		}
		if b.Reconnect.ConnectTimeout <= 0 {
			bad(f+".reconnect.connectTimeout", b.Reconnect.ConnectTimeout, "must be > 0")
		}
	}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		b, ok := c.Backends[r.Backend]
		if !ok {
			bad(f+".backend", r.Backend, "no such backend")
		}
		if !strings.HasPrefix(r.Channel, "/") || strings.HasPrefix(r.Channel, "/meta/") {
			bad(f+".channel", r.Channel, "must be a channel or pattern outside /meta/")
		}
		service := strings.HasPrefix(r.Channel, "/service/")
		switch r.Type {
		case RouteCall:
			if !service {
				bad(f+".channel", r.Channel, "a call route needs a /service/ channel")
			}
		case RouteStream, RoutePublish:
			if service {
				bad(f+".channel", r.Channel, "a "+r.Type+" route needs a broadcast channel, not /service/")
			}
			if ok && b.URL != "" {
				bad(f+".backend", r.Backend, "an HTTP backend can only serve call routes")
			}
		default:
			bad(f+".type", r.Type, "must be call, stream or publish")
		}
		if r.Method != "" && strings.Count(strings.TrimPrefix(r.Method, "/"), "/") != 1 {
			bad(f+".method", r.Method, "must be package.Service/Method")
		}
		if ok && b.URL != "" && r.Method != "" {
			bad(f+".method", r.Method, "an HTTP backend has no gRPC methods")
		}
		if r.Type == RoutePublish && r.Method != "" {
			bad(f+".method", r.Method, "publish routes use the backend contract's Publish")
		}
		if (r.Request != nil || r.ChannelTemplate != "") && (r.Type != RouteStream || r.Method == "") {
			bad(f, r.Channel, "request and channelTemplate apply only to stream routes with a method")
		}
		if r.Timeout < 0 {
			bad(f+".timeout", r.Timeout, "must be >= 0")
		}
	}
	if c.Auth.Backend != "" {
		if b, ok := c.Backends[c.Auth.Backend]; !ok {
			bad("auth.backend", c.Auth.Backend, "no such backend")
		} else if b.URL != "" {
			bad("auth.backend", c.Auth.Backend, "must be a gRPC backend implementing the contract's Handshake")
		}
	}
}
