package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
)

func TestValidateTLS(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string // "" means valid
	}{
		{"sameSite none without TLS", func(c *config.Config) { c.Cookie.SameSite = "None" }, "cookie.sameSite: None: none needs tls.mode files or auto"},
		{"sameSite none with files", func(c *config.Config) {
			c.Cookie.SameSite = "none"
			c.TLS.Mode, c.TLS.CertFile, c.TLS.KeyFile = "files", "c.pem", "k.pem"
		}, ""},
		{"mode", func(c *config.Config) { c.TLS.Mode = "on" }, "tls.mode: on: must be off, files or auto"},
		{"files without key", func(c *config.Config) { c.TLS.Mode, c.TLS.CertFile = "files", "c.pem" }, "tls.keyFile: : required with tls.mode files"},
		{"auto without agree", func(c *config.Config) {
			c.TLS.Mode, c.TLS.ACME.Domains = "auto", []string{"chat.example.com"}
		}, "tls.acme.agree: false: must be true with tls.mode auto"},
		{"auto without names", func(c *config.Config) {
			c.TLS.Mode, c.TLS.ACME.Agree = "auto", true
			c.TLS.ACME.OnDemand.Enabled = true
		}, "tls.acme.domains: []: required with tls.mode auto"},
		{"auto on demand only", func(c *config.Config) {
			c.TLS.Mode, c.TLS.ACME.Agree = "auto", true
			c.TLS.ACME.OnDemand = config.OnDemandConfig{Enabled: true, Allow: []string{"*.example.com"}}
		}, ""},
		{"open on-demand door", func(c *config.Config) {
			c.TLS.ACME.OnDemand.Enabled = true
		}, "tls.acme.onDemand.allow: []: required with tls.acme.onDemand.enabled"},
		{"min version", func(c *config.Config) { c.TLS.MinVersion = "1.1" }, "tls.minVersion: 1.1: must be 1.2 or 1.3"},
		{"challenge", func(c *config.Config) { c.TLS.ACME.Challenges = []string{"dns-01"} }, "tls.acme.challenges[0]: dns-01"},
		{"ca", func(c *config.Config) { c.TLS.ACME.CA = "http://ca.example/dir" }, "tls.acme.ca: http://ca.example/dir: must be an https URL"},
		{"eab", func(c *config.Config) { c.TLS.ACME.EAB.KeyID = "kid" }, "tls.acme.eab: kid: keyID and macKey go together"},
		{"http listen", func(c *config.Config) { c.TLS.HTTPListen = "80" }, "tls.httpListen: 80: must be host:port"},
		{"http2 sessions", func(c *config.Config) { c.Bayeux.HTTP2MaxSessionsPerBrowser = -2 }, "bayeux.http2MaxSessionsPerBrowser: -2"},
	}
	for _, tt := range tests {
		c := config.Default()
		tt.mutate(c)
		err := c.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v; want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v; want it to contain %q", tt.name, err, tt.want)
			continue
		}
		var fe *config.FieldError
		if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not a wrapped *FieldError", tt.name, err)
		}
	}
}

func TestTLSDefaults(t *testing.T) {
	c := config.Default()
	if c.TLS.Mode != "off" || !*c.TLS.Redirect || c.TLS.MinVersion != "1.2" || c.TLS.ACME.CA != config.LetsEncryptProduction ||
		len(c.TLS.ACME.Challenges) != 2 || c.Bayeux.HTTP2MaxSessionsPerBrowser != -1 || c.TLSOn() {
		t.Errorf("TLS defaults = %+v", c.TLS)
	}
}
