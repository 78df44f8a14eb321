package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"
)

// Challenge types that Config.Challenges accepts.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ALPNProtocol is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const ALPNProtocol = "acme-tls/1"

// ErrStorage is wrapped by the error of New or Start when the storage
// directory cannot be created or written.
var ErrStorage = errors.New("acme: storage not writable")

// EAB is the external account binding some CAs require (RFC 8555 §7.3.4).
type EAB struct {
	KeyID  string // key identifier given by the CA
	MACKey string // base64url-encoded HMAC key given by the CA
}

// Config configures a Manager. The zero value of each field is its default.
type Config struct {
	// CA is the ACME directory URL. Default: Let's Encrypt production
	// (certmagic.LetsEncryptProductionCA).
	CA string
	// Email is the ACME account contact. Default: none.
	Email string
	// Agreed accepts the CA's terms of service. Default: false; most CAs
	// refuse to create an account without it.
	Agreed bool
	// Domains are the names whose certificates are obtained at Start and
	// kept renewed. Default: none.
	Domains []string
	// Storage is the directory holding the account, keys, certificates and
	// locks. Required; it is created if missing and must be writable.
	Storage string
	// Challenges lists the enabled challenge types, ChallengeHTTP01 and/or
	// ChallengeTLSALPN01. Default: both.
	Challenges []string
	// AltHTTPPort is the port the CA's HTTP-01 validation reaches the
	// gateway on, when something forwards port 80 to it. Default: 80.
	AltHTTPPort int
	// AltTLSALPNPort is the same for TLS-ALPN-01 and port 443. Default: 443.
	AltTLSALPNPort int
	// TrustedRoots verifies the ACME server's own TLS certificate.
	// Default: the system roots.
	TrustedRoots *x509.CertPool
	// EAB is the external account binding. Default: none.
	EAB *EAB
	// OnDemand obtains certificates during TLS handshakes for names that
	// match Allow (or AllowName). Default: false.
	OnDemand bool
	// Allow is the initial on-demand allowlist: exact names and
	// "*.example.com" patterns (one label). Default: empty (nothing allowed).
	Allow []string
	// RenewalWindowRatio is the fraction of a certificate's lifetime,
	// counted back from its expiry, in which it is renewed.
	// Default: 1/3 (certmagic.DefaultRenewalWindowRatio).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often managed certificates are checked for
	// renewal. Default: 10 minutes (certmagic.DefaultRenewCheckInterval).
	RenewCheckInterval time.Duration
	// Profile is the ACME certificate profile to request (draft-aaron-acme-profiles),
	// e.g. a short-lived one. Default: the CA's default.
	Profile string
	// DisableARI turns off ACME Renewal Information (RFC 9773), so renewal
	// follows RenewalWindowRatio only. Default: false.
	DisableARI bool
	// Logger receives certmagic's logs. Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.CA == "" {
		c.CA = certmagic.LetsEncryptProductionCA
	}
	if len(c.Challenges) == 0 {
		c.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	if c.RenewalWindowRatio == 0 {
		c.RenewalWindowRatio = certmagic.DefaultRenewalWindowRatio
	}
	if c.RenewCheckInterval == 0 {
		c.RenewCheckInterval = certmagic.DefaultRenewCheckInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	if c.Storage == "" {
		return errors.New("acme: storage: must be set")
	}
	for _, ch := range c.Challenges {
		if ch != ChallengeHTTP01 && ch != ChallengeTLSALPN01 {
			return fmt.Errorf("acme: challenges: %q: must be %q or %q", ch, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	for _, d := range c.Domains {
		if !certmagic.SubjectQualifiesForCert(d) {
			return fmt.Errorf("acme: domains: %q: not a valid certificate name", d)
		}
	}
	for _, a := range c.Allow {
		if err := checkPattern(a); err != nil {
			return fmt.Errorf("acme: allow: %w", err)
		}
	}
	if c.RenewalWindowRatio < 0 || c.RenewalWindowRatio >= 1 {
		return fmt.Errorf("acme: renewalWindowRatio: %v: must be in (0, 1)", c.RenewalWindowRatio)
	}
	if c.RenewCheckInterval < 0 {
		return fmt.Errorf("acme: renewCheckInterval: %v: must be > 0", c.RenewCheckInterval)
	}
	if c.EAB != nil && (c.EAB.KeyID == "" || c.EAB.MACKey == "") {
		return errors.New("acme: eab: keyID and macKey must both be set")
	}
	return nil
}

// checkPattern accepts "name.example" and "*.example.com".
func checkPattern(p string) error {
	name := strings.TrimPrefix(p, "*.")
	if name == "" || strings.Contains(name, "*") || !certmagic.SubjectQualifiesForCert(name) {
		return fmt.Errorf("%q: must be a name or *.name", p)
	}
	return nil
}

// Manager obtains and renews certificates from an ACME CA and serves them
// in TLS handshakes. Its methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	cache   *certmagic.Cache
	managed *certmagic.Config     // Domains, obtained eagerly
	demand  *certmagic.Config     // on-demand names; nil unless OnDemand
	issuer  *certmagic.ACMEIssuer // of managed; HTTP-01 answers come from it
	domains map[string]bool       // normalised Config.Domains

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // Start's goroutines: probeCA, manageLoop

	mu        sync.Mutex
	allow     map[string]bool   // on-demand allowlist, exact names and "*.x" patterns
	problems  map[string]string // readiness problems by key
	started   bool
	stopStart func() bool // undoes Start's context.AfterFunc
	closed    bool

	obtained, renewed, failures, refused atomic.Int64
}

// New checks cfg and its storage and returns a Manager that serves no
// certificate until Start.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkStorage(cfg.Storage); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		domains:  make(map[string]bool, len(cfg.Domains)),
		allow:    make(map[string]bool, len(cfg.Allow)),
		problems: make(map[string]string),
	}
	for _, d := range cfg.Domains {
		m.domains[normalize(d)] = true
	}
	for _, a := range cfg.Allow {
		m.allow[normalize(a)] = true
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))

	zl := newZapLogger(cfg.Logger)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configForCert,
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             zl,
	})
	storage := &certmagic.FileStorage{Path: cfg.Storage}
	m.managed, m.issuer = m.newMagic(storage, zl, nil)
	if cfg.OnDemand {
		m.demand, _ = m.newMagic(storage, zl, &certmagic.OnDemandConfig{DecisionFunc: m.decide})
	}
	return m, nil
}

// newMagic builds a certmagic config on m's cache with its own ACME issuer.
func (m *Manager) newMagic(storage certmagic.Storage, zl *zap.Logger, od *certmagic.OnDemandConfig) (*certmagic.Config, *certmagic.ACMEIssuer) {
	c := m.cfg
	magic := certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: c.RenewalWindowRatio,
		OnEvent:            m.onEvent,
		OnDemand:           od,
		Issuers:            []certmagic.Issuer{}, // not nil: no default issuer from certmagic's globals
		Storage:            storage,
		DisableARI:         c.DisableARI,
		Logger:             zl,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:                      c.CA,
		TestCA:                  c.CA, // never fall back to certmagic's default test CA
		Email:                   c.Email,
		Agreed:                  c.Agreed,
		Profile:                 c.Profile,
		DisableHTTPChallenge:    !slices.Contains(c.Challenges, ChallengeHTTP01),
		DisableTLSALPNChallenge: !slices.Contains(c.Challenges, ChallengeTLSALPN01),
		AltHTTPPort:             c.AltHTTPPort,
		AltTLSALPNPort:          c.AltTLSALPNPort,
		TrustedRoots:            c.TrustedRoots,
		Logger:                  zl,
	}
	if c.EAB != nil {
		tmpl.ExternalAccount = &acme.EAB{KeyID: c.EAB.KeyID, MACKey: c.EAB.MACKey}
	}
	iss := certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{iss}
	return magic, iss
}

// configForCert tells certmagic's maintenance which config manages cert.
func (m *Manager) configForCert(cert certmagic.Certificate) (*certmagic.Config, error) {
	if m.demand == nil {
		return m.managed, nil
	}
	for _, n := range cert.Names {
		if m.domains[normalize(n)] {
			return m.managed, nil
		}
	}
	return m.demand, nil
}

// checkStorage creates dir and proves it writable with a probe file.
func checkStorage(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrStorage, dir, err)
	}
	f, err := os.CreateTemp(dir, ".cometgate-probe-*")
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrStorage, dir, err)
	}
	name := f.Name()
	_, werr := f.WriteString("probe")
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrStorage, dir, err)
	}
	return nil
}

// Start begins obtaining and renewing the certificates of Config.Domains,
// in the background: certificates already in storage are served at once,
// missing ones are obtained with certmagic's retry backoff, and failures are
// recorded for Problems. Management stops at Close or when ctx is done.
func (m *Manager) Start(ctx context.Context) error {
	if err := checkStorage(m.cfg.Storage); err != nil {
		m.setProblem("storage", err.Error())
		return err
	}
	m.clearProblem("storage")
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("acme: manager closed")
	}
	if m.started {
		return errors.New("acme: already started")
	}
	m.started = true
	m.stopStart = context.AfterFunc(ctx, m.cancel)
	m.wg.Add(1 + len(m.cfg.Domains)) // under mu, so never concurrently with Close's Wait
	go m.probeCA()
	for _, d := range m.cfg.Domains {
		go m.manageLoop(d)
	}
	return nil
}

// retryIntervals paces manageLoop's attempts to get a domain's first
// certificate; the last one repeats.
var retryIntervals = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// manageLoop brings name under certmagic's management: it loads the
// certificate from storage or obtains it, retrying with backoff until it
// succeeds or the Manager closes. From then on certmagic's maintenance
// renews it. It runs in its own goroutine (not certmagic's ManageAsync) so
// that Close can wait for it.
func (m *Manager) manageLoop(name string) {
	defer m.wg.Done()
	for i := 0; ; i++ {
		err := m.managed.ManageSync(m.ctx, []string{name})
		if err == nil || m.ctx.Err() != nil {
			return
		}
		wait := retryIntervals[min(i, len(retryIntervals)-1)]
		m.log.Error("acme: managing certificate; will retry", "name", name, "err", err, "retryIn", wait)
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// probeCA fetches the CA's directory once so that an unreachable CA shows
// in Problems even when every certificate is still valid in storage.
func (m *Manager) probeCA() {
	defer m.wg.Done()
	tr := &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}
	if m.cfg.TrustedRoots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: m.cfg.TrustedRoots}
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(m.ctx, 15*time.Second)
	defer cancel()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.cfg.CA, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("directory: HTTP %d", resp.StatusCode)
		}
		return nil
	}()
	if m.ctx.Err() != nil {
		return
	}
	if err != nil {
		m.setProblem("ca", fmt.Sprintf("ACME CA %s unreachable: %v", m.cfg.CA, err))
		return
	}
	m.clearProblem("ca")
}

// onEvent records certmagic's issuance events as counters and problems.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		if renewal {
			m.renewed.Add(1)
		} else {
			m.obtained.Add(1)
		}
		m.clearProblem("ca")
		m.clearProblem("cert:" + name)
	case "cert_failed":
		m.failures.Add(1)
		err, _ := data["error"].(error)
		what := "obtaining"
		if renewal {
			what = "renewing"
		}
		if isUnreachable(err) {
			m.setProblem("ca", fmt.Sprintf("ACME CA %s unreachable: %v", m.cfg.CA, err))
		}
		line := fmt.Sprintf("%s certificate for %s failed: %s", what, name, describe(err))
		if left, ok := data["remaining"].(time.Duration); ok && renewal && left > 0 {
			line = fmt.Sprintf("%s (the current certificate is still served, %v left)", line, left.Round(time.Second))
		}
		m.setProblem("cert:"+name, line)
	}
	return nil
}

// isUnreachable tells a network failure from an answer of the CA.
func isUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "dial tcp") || strings.Contains(s, "connection refused") || strings.Contains(s, "no such host")
}

// describe renders err, putting the CA's problem detail (its reason) first
// when there is one.
func describe(err error) string {
	if err == nil {
		return "unknown error"
	}
	var p acme.Problem
	if errors.As(err, &p) {
		return fmt.Sprintf("CA says: %s (%v)", p.Detail, err)
	}
	return err.Error()
}

func (m *Manager) setProblem(key, line string) {
	m.mu.Lock()
	m.problems[key] = line
	m.mu.Unlock()
	m.log.Warn("acme: problem", "problem", line)
}

func (m *Manager) clearProblem(key string) {
	m.mu.Lock()
	delete(m.problems, key)
	m.mu.Unlock()
}

// Problems returns one human-readable line per current problem (for
// /readyz): an unreachable CA, a failed issuance with the CA's reason,
// unwritable storage, a managed name with no certificate yet. Empty when
// all is well. Sorted.
func (m *Manager) Problems() []string {
	m.mu.Lock()
	out := make([]string, 0, len(m.problems)+len(m.domains))
	for _, p := range m.problems {
		out = append(out, p)
	}
	started := m.started
	m.mu.Unlock()
	if started {
		for d := range m.domains {
			if len(m.cache.AllMatchingCertificates(d)) == 0 {
				out = append(out, fmt.Sprintf("no certificate yet for %s", d))
			}
		}
	}
	sort.Strings(out)
	return out
}

// GetCertificate serves a TLS handshake (tls.Config.GetCertificate),
// including TLS-ALPN-01 challenge handshakes.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.demand != nil {
		return m.demand.GetCertificate(hello)
	}
	return m.managed.GetCertificate(hello)
}

// HTTPChallenge answers ACME HTTP-01 challenges under
// /.well-known/acme-challenge/ and passes every other request to next.
func (m *Manager) HTTPChallenge(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// NextProtos returns the ALPN protocols the TLS listener must add to its
// own: acme-tls/1 when TLS-ALPN-01 is enabled, else none.
func (m *Manager) NextProtos() []string {
	if slices.Contains(m.cfg.Challenges, ChallengeTLSALPN01) {
		return []string{ALPNProtocol}
	}
	return nil
}

// decide is the on-demand DecisionFunc: a lookup in the in-memory
// allowlist, never a network call. A refused name gets no ACME order.
func (m *Manager) decide(_ context.Context, name string) error {
	name = normalize(name)
	if m.domains[name] || m.allowed(name) {
		return nil
	}
	m.refused.Add(1)
	return fmt.Errorf("acme: on-demand certificate for %q not allowed", name)
}

func (m *Manager) allowed(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.allow[name] {
		return true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return m.allow["*"+name[i:]]
	}
	return false
}

// AllowName adds an exact name or a "*.example.com" pattern to the
// on-demand allowlist.
func (m *Manager) AllowName(name string) error {
	if err := checkPattern(name); err != nil {
		return fmt.Errorf("acme: allow: %w", err)
	}
	m.mu.Lock()
	m.allow[normalize(name)] = true
	m.mu.Unlock()
	return nil
}

// DisallowName removes a name or pattern from the on-demand allowlist.
// Certificates already obtained for it stay cached until they expire.
func (m *Manager) DisallowName(name string) {
	m.mu.Lock()
	delete(m.allow, normalize(name))
	m.mu.Unlock()
}

// Allowed returns the on-demand allowlist, sorted.
func (m *Manager) Allowed() []string {
	m.mu.Lock()
	out := make([]string, 0, len(m.allow))
	for a := range m.allow {
		out = append(out, a)
	}
	m.mu.Unlock()
	sort.Strings(out)
	return out
}

// Stats returns the certificates obtained and renewed, the failed
// issuance attempts, and the on-demand handshakes refused, since New.
func (m *Manager) Stats() (obtained, renewed, failures, onDemandRefused int64) {
	return m.obtained.Load(), m.renewed.Load(), m.failures.Load(), m.refused.Load()
}

// Close stops certificate management and certmagic's maintenance
// goroutine, and waits for them (a renewal job certmagic already started
// is cancelled, not awaited). Certificates already served stay valid.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	stop := m.stopStart
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	m.cancel()
	m.cache.Stop()
	m.wg.Wait()
	return nil
}

func normalize(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}
