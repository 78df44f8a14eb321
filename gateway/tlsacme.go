package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/acme"
	"github.com/cometgate/cometgate/gateway/api"
)

// acmeCerts is tls.mode auto: the ACME manager as the public listener's
// certificate source.
type acmeCerts struct {
	*acme.Manager
}

var (
	_ certSource       = acmeCerts{}
	_ certLoadFailures = acmeCerts{}
)

// WithACMETuning lets fn adjust the ACME manager's configuration of
// tls.mode auto after it is built from the configuration file: settings a
// file does not offer, such as renewal timing for tests against a CA that
// issues short-lived certificates.
func WithACMETuning(fn func(*acme.Config)) Option {
	return optionFunc(func(s *Server) { s.acmeTuning = fn })
}

// newACMECerts builds the ACME manager of cfg; Start (after the listeners
// are bound) begins obtaining certificates.
func newACMECerts(ctx context.Context, cfg config.TLSConfig, tune func(*acme.Config), log *slog.Logger) (certSource, error) {
	a := cfg.ACME
	ac := acme.Config{
		CA: a.CA, Email: a.Email, Agreed: a.Agree, Domains: a.Domains, Storage: a.Storage,
		Challenges: a.Challenges, AltHTTPPort: a.AltHTTPPort, AltTLSALPNPort: a.AltTLSALPNPort,
		OnDemand: a.OnDemand.Enabled, Allow: a.OnDemand.Allow, Logger: log,
	}
	if a.EAB.KeyID != "" {
		ac.EAB = &acme.EAB{KeyID: a.EAB.KeyID, MACKey: a.EAB.MACKey}
	}
	if a.TrustedRoots != "" {
		pem, err := os.ReadFile(a.TrustedRoots)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.trustedRoots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.trustedRoots: %s holds no PEM certificate", a.TrustedRoots)
		}
		ac.TrustedRoots = pool
	}
	if tune != nil {
		tune(&ac)
	}
	m, err := acme.New(context.WithoutCancel(ctx), ac) // it lives until Close
	if err != nil {
		return nil, err
	}
	return acmeCerts{m}, nil
}

// Problems lists what keeps the node from serving a valid certificate,
// for /readyz: a renewal that fails while the current certificate is
// still valid is logged and counted, but the node stays ready.
func (c acmeCerts) Problems() []string {
	var out []string
	for _, p := range c.Manager.Problems() {
		if !strings.Contains(p, "still served") {
			out = append(out, p)
		}
	}
	return out
}

// LoadFailures counts the failed issuance and renewal attempts.
func (c acmeCerts) LoadFailures() int64 {
	_, _, failures, _ := c.Manager.Stats()
	return failures
}

// tlsNames returns the on-demand TLS allowlist for the control API, or
// nil when the node has none (no TLS yet, files mode, or on-demand off).
func (s *Server) tlsNames() api.TLSNames {
	if s.cfg.TLS.Mode != "auto" || !s.cfg.TLS.ACME.OnDemand.Enabled {
		return nil
	}
	if a, ok := s.certs.(acmeCerts); ok {
		return a.Manager
	}
	return nil
}

// acmeCounts reads the ACME manager's counters for /metrics; zero before
// Start.
func (s *Server) acmeCounts() (obtained, renewed, onDemandRefused int64) {
	s.mu.Lock()
	started := s.listener != nil
	s.mu.Unlock()
	if a, ok := s.certs.(acmeCerts); ok && started {
		obtained, renewed, _, onDemandRefused = a.Stats()
	}
	return
}
