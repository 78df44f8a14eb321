package config

import (
	"fmt"
	"net"
	"strings"
)

// APIConfig configures the control API (gRPC and REST on one listener).
type APIConfig struct {
	// Listen is the API's own address. Default "127.0.0.1:8081". "public"
	// serves it on the public listener instead (REST under /v1/, gRPC over
	// HTTP/2); "off" disables it. Environment: COMETGATE_API_LISTEN.
	Listen string `yaml:"listen"`
	// Tokens are accepted bearer tokens ("Authorization: Bearer <token>").
	// Environment: COMETGATE_API_TOKENS (comma-separated).
	Tokens []string `yaml:"tokens"`
	// TLS serves the API over TLS; with ClientCAFile, client certificates
	// verified against it authenticate (mTLS).
	TLS APITLSConfig `yaml:"tls"`
	// MaxDataBytes bounds the data of one message sent through the API.
	// Default 64 KiB.
	MaxDataBytes int `yaml:"maxDataBytes"`
}

// APITLSConfig holds the API listener's certificate and client CA.
type APITLSConfig struct {
	CertFile     string `yaml:"certFile"`
	KeyFile      string `yaml:"keyFile"`
	ClientCAFile string `yaml:"clientCAFile"`
}

// APIEnabled reports whether the control API is served.
func (c *Config) APIEnabled() bool { return c.API.Listen != "off" }

// APIOnPublic reports whether the API shares the public listener.
func (c *Config) APIOnPublic() bool { return c.API.Listen == "public" }

func (c *Config) setAPIDefaults() {
	setStr(&c.API.Listen, "127.0.0.1:8081")
	setInt(&c.API.MaxDataBytes, 64<<10)
}

func (c *Config) validateAPI(bad func(field string, value any, reason string)) {
	a := c.API
	if !c.APIEnabled() {
		return
	}
	addr := a.Listen
	if c.APIOnPublic() {
		addr = c.Listen
	} else if _, _, err := net.SplitHostPort(addr); err != nil {
		bad("api.listen", a.Listen, `must be host:port, "public" or "off"`)
		return
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		bad("api.tls", a.TLS.CertFile, "certFile and keyFile go together")
	}
	if a.TLS.ClientCAFile != "" && a.TLS.CertFile == "" && !c.APIOnPublic() {
		bad("api.tls.clientCAFile", a.TLS.ClientCAFile, "mTLS needs certFile and keyFile")
	}
	if c.APIOnPublic() && (a.TLS.CertFile != "" || a.TLS.ClientCAFile != "") {
		bad("api.tls", a.TLS.CertFile, `TLS settings need the API's own listener, not "public"`)
	}
	for i, t := range a.Tokens {
		if len(t) < 16 {
			bad(fmt.Sprintf("api.tokens[%d]", i), "(hidden)", "must be at least 16 characters")
		}
	}
	if len(a.Tokens) == 0 && a.TLS.ClientCAFile == "" && !loopback(addr) {
		bad("api.listen", addr, "refusing to serve the control API without authentication on a non-loopback address: set api.tokens or api.tls.clientCAFile")
	}
	if a.MaxDataBytes < 16 {
		bad("api.maxDataBytes", a.MaxDataBytes, "must be >= 16")
	}
}

// loopback reports whether addr's host is a loopback address or
// "localhost".
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
