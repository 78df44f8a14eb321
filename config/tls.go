package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// TLSConfig serves the public listener over HTTPS, from certificate files
// or from certificates obtained with ACME.
type TLSConfig struct {
	// Mode is "off" (plain HTTP), "files" (CertFile and KeyFile, reloaded
	// when they change on disk) or "auto" (ACME, see ACME). Default "off".
	Mode string `yaml:"mode"`
	// CertFile is the PEM certificate chain, for mode files.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key, for mode files.
	KeyFile string `yaml:"keyFile"`
	// HTTPListen is the plain-HTTP listener used with TLS on (e.g. ":80"):
	// it answers ACME HTTP-01 challenges in mode auto and redirects the
	// rest to HTTPS. Default "" (none).
	HTTPListen string `yaml:"httpListen"`
	// Redirect makes HTTPListen answer other requests with a 308 redirect
	// to https; when false they get 404. Default true.
	Redirect *bool `yaml:"redirect"`
	// HSTS adds a Strict-Transport-Security header to HTTPS responses.
	HSTS HSTSConfig `yaml:"hsts"`
	// MinVersion is the lowest TLS version accepted, "1.2" or "1.3"
	// (1.3 is preferred whenever the client offers it). Default "1.2".
	MinVersion string `yaml:"minVersion"`
	// ACME configures certificate issuance for mode auto.
	ACME ACMEConfig `yaml:"acme"`
}

// HSTSConfig shapes the Strict-Transport-Security header.
type HSTSConfig struct {
	// MaxAge is the header's max-age; 0 sends no header. Default 0.
	MaxAge Duration `yaml:"maxAge"`
	// IncludeSubdomains adds includeSubDomains. Default false.
	IncludeSubdomains bool `yaml:"includeSubdomains"`
}

// LetsEncryptProduction is the default ACME directory; its staging
// counterpart is LetsEncryptStaging.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACMEConfig configures how mode auto obtains and renews certificates.
type ACMEConfig struct {
	// CA is the ACME directory URL. Default Let's Encrypt production
	// (LetsEncryptProduction); try LetsEncryptStaging first.
	CA string `yaml:"ca"`
	// Email is the account's contact address. Default "" (none).
	Email string `yaml:"email"`
	// Agree accepts the CA's subscriber agreement; required for mode auto.
	// Default false.
	Agree bool `yaml:"agree"`
	// Domains are the names to obtain certificates for at start.
	// Default none.
	Domains []string `yaml:"domains"`
	// Storage is the directory holding accounts, keys and certificates.
	// Nodes sharing it coordinate issuance. Default "./cometgate-certs".
	Storage string `yaml:"storage"`
	// Challenges are the ACME challenge types offered, among http-01 and
	// tls-alpn-01. Default [http-01, tls-alpn-01].
	Challenges []string `yaml:"challenges"`
	// AltHTTPPort is the port the CA's HTTP-01 validation reaches,
	// when not 80 (tests). Default 0 (80).
	AltHTTPPort int `yaml:"altHTTPPort"`
	// AltTLSALPNPort is the port the CA's TLS-ALPN-01 validation reaches,
	// when not 443 (tests). Default 0 (443).
	AltTLSALPNPort int `yaml:"altTLSALPNPort"`
	// TrustedRoots is a PEM file of extra CA roots trusted when talking to
	// the ACME server (a test CA such as Pebble). Default "" (system roots).
	TrustedRoots string `yaml:"trustedRoots"`
	// EAB is the external account binding some CAs require.
	EAB EABConfig `yaml:"eab"`
	// OnDemand obtains certificates at the first handshake for a name,
	// only for names the allowlist accepts.
	OnDemand OnDemandConfig `yaml:"onDemand"`
}

// EABConfig is an ACME external account binding. Both fields or neither.
type EABConfig struct {
	// KeyID is the key identifier given by the CA. Default "".
	KeyID string `yaml:"keyID"`
	// MACKey is the base64url HMAC key given by the CA. Default "".
	MACKey string `yaml:"macKey"`
}

// OnDemandConfig guards on-demand issuance with a local allowlist.
type OnDemandConfig struct {
	// Enabled turns on-demand issuance on. Default false.
	Enabled bool `yaml:"enabled"`
	// Allow lists the names (app.example.com) or one-label wildcard
	// patterns (*.example.com) that may get a certificate on demand; a
	// name outside it gets none. Required when Enabled. Default none.
	Allow []string `yaml:"allow"`
}

// TLSOn reports whether the public listener serves TLS.
func (c *Config) TLSOn() bool { return c.TLS.Mode != "off" }

func (c *Config) setTLSDefaults() {
	t := &c.TLS
	setStr(&t.Mode, "off")
	setBool(&t.Redirect, true)
	setStr(&t.MinVersion, "1.2")
	setStr(&t.ACME.CA, LetsEncryptProduction)
	setStr(&t.ACME.Storage, "./cometgate-certs")
	if len(t.ACME.Challenges) == 0 {
		t.ACME.Challenges = []string{"http-01", "tls-alpn-01"}
	}
}

func (c *Config) validateTLS(bad func(field string, value any, reason string)) {
	t := c.TLS
	switch t.Mode {
	case "off", "files", "auto":
	default:
		bad("tls.mode", t.Mode, "must be off, files or auto")
	}
	if t.Mode == "files" {
		if t.CertFile == "" {
			bad("tls.certFile", t.CertFile, "required with tls.mode files")
		}
		if t.KeyFile == "" {
			bad("tls.keyFile", t.KeyFile, "required with tls.mode files")
		}
	}
	if t.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(t.HTTPListen); err != nil {
			bad("tls.httpListen", t.HTTPListen, "must be host:port or empty")
		}
	}
	if t.HSTS.MaxAge < 0 {
		bad("tls.hsts.maxAge", t.HSTS.MaxAge, "must be >= 0 (0: no header)")
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		bad("tls.minVersion", t.MinVersion, "must be 1.2 or 1.3")
	}
	a := t.ACME
	if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("tls.acme.ca", a.CA, "must be an https URL of an ACME directory")
	}
	if t.Mode == "auto" {
		if !a.Agree {
			bad("tls.acme.agree", a.Agree, "must be true with tls.mode auto (you accept the CA's subscriber agreement)")
		}
		if len(a.Domains) == 0 && !(a.OnDemand.Enabled && len(a.OnDemand.Allow) > 0) {
			bad("tls.acme.domains", a.Domains, "required with tls.mode auto, unless tls.acme.onDemand is enabled with an allow list")
		}
	}
	for i, d := range a.Domains {
		if !hostName(d) || net.ParseIP(d) != nil {
			bad(fmt.Sprintf("tls.acme.domains[%d]", i), d, "must be a DNS name")
		}
	}
	if a.Storage == "" {
		bad("tls.acme.storage", a.Storage, "must name a directory")
	}
	seen := map[string]bool{}
	for i, ch := range a.Challenges {
		field := fmt.Sprintf("tls.acme.challenges[%d]", i)
		switch {
		case ch != "http-01" && ch != "tls-alpn-01":
			bad(field, ch, "must be http-01 or tls-alpn-01")
		case seen[ch]:
			bad(field, ch, "listed twice")
		}
		seen[ch] = true
	}
	if a.AltHTTPPort < 0 || a.AltHTTPPort > 65535 {
		bad("tls.acme.altHTTPPort", a.AltHTTPPort, "must be a port (0: 80)")
	}
	if a.AltTLSALPNPort < 0 || a.AltTLSALPNPort > 65535 {
		bad("tls.acme.altTLSALPNPort", a.AltTLSALPNPort, "must be a port (0: 443)")
	}
	if (a.EAB.KeyID == "") != (a.EAB.MACKey == "") {
		bad("tls.acme.eab", a.EAB.KeyID, "keyID and macKey go together")
	}
	if a.OnDemand.Enabled && len(a.OnDemand.Allow) == 0 {
		bad("tls.acme.onDemand.allow", a.OnDemand.Allow, "required with tls.acme.onDemand.enabled: an open on-demand door lets anyone make the node order certificates")
	}
	for i, p := range a.OnDemand.Allow {
		if !hostName(strings.TrimPrefix(p, "*.")) {
			bad(fmt.Sprintf("tls.acme.onDemand.allow[%d]", i), p, "must be a DNS name or *.name")
		}
	}
	if strings.EqualFold(c.Cookie.SameSite, "none") && t.Mode == "off" {
		bad("cookie.sameSite", c.Cookie.SameSite, "none needs tls.mode files or auto: browsers drop SameSite=None cookies that are not Secure")
	}
}
