package config

import (
	"fmt"
	"net"
	"net/url"
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
	// AllowedOrigins are the web origins ("https://ops.example": scheme,
	// host and optional port) whose browser requests the REST API serves,
	// with CORS headers. A request carrying any other Origin header is
	// refused with 403. "*" allows every origin and is accepted only with
	// Tokens, since a web page cannot know a token. Default none.
	AllowedOrigins []string `yaml:"allowedOrigins"`
	// AllowedHosts are host names ("gw.internal", no port) that the Host
	// header of a REST request may carry, besides IP addresses, "localhost"
	// and the host of the listen address; any other is refused with 403,
	// which defeats DNS rebinding. Default none.
	AllowedHosts []string `yaml:"allowedHosts"`
}

// APITLSConfig holds the API listener's certificate and client CA.
type APITLSConfig struct {
	CertFile     string `yaml:"certFile"`
	KeyFile      string `yaml:"keyFile"`
	ClientCAFile string `yaml:"clientCAFile"`
	// Public serves the API's own listener over TLS with the public
	// listener's certificates (tls.mode files or auto, renewals included)
	// instead of certFile and keyFile. Default false.
	Public bool `yaml:"public"`
}

// APITLSOn reports whether the API's own listener serves TLS.
func (c *Config) APITLSOn() bool { return c.API.TLS.CertFile != "" || c.API.TLS.Public }

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
	if a.TLS.ClientCAFile != "" && !c.APITLSOn() && !c.APIOnPublic() {
		bad("api.tls.clientCAFile", a.TLS.ClientCAFile, "mTLS needs certFile and keyFile, or public: true")
	}
	if a.TLS.Public && a.TLS.CertFile != "" {
		bad("api.tls.public", true, "exclusive with certFile and keyFile")
	}
	if a.TLS.Public && !c.TLSOn() {
		bad("api.tls.public", true, "needs the public listener's certificates: tls.mode files or auto")
	}
	if c.APIOnPublic() && (a.TLS.CertFile != "" || a.TLS.ClientCAFile != "" || a.TLS.Public) {
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
	for i, o := range a.AllowedOrigins {
		field := fmt.Sprintf("api.allowedOrigins[%d]", i)
		switch {
		case o == "*" && len(a.Tokens) == 0:
			bad(field, o, `"*" needs api.tokens: without a token any web page could call the API`)
		case o != "*" && !webOrigin(o):
			bad(field, o, `must be "*" or an origin such as https://ops.example (scheme, host, optional port; no path, no trailing slash)`)
		}
	}
	for i, h := range a.AllowedHosts {
		if !hostName(h) {
			bad(fmt.Sprintf("api.allowedHosts[%d]", i), h, "must be a host name such as gw.internal (no scheme, no port)")
		}
	}
}

// webOrigin reports whether s is an origin as browsers send it:
// http or https, a host and an optional port, nothing else.
func webOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return s == u.Scheme+"://"+u.Host
}

// hostName reports whether s is a DNS name (letters, digits, '-', '_' and
// dots, an optional final dot).
func hostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
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
