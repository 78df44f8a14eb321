package acme

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/cometgate/cometgate/gateway/acme/acmetest"
	"github.com/cometgate/cometgate/internal/poll"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const waitLimit = 45 * time.Second

var nameSeq atomic.Int64

// uniqueName returns label.cometgate.test with a per-process sequence
// number: certmagic keeps some state by name process-wide (renewal backoff,
// active challenges), which must not leak from one test run to the next.
func uniqueName(label string) string {
	return fmt.Sprintf("%s-%d.cometgate.test", label, nameSeq.Add(1))
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// loopbackListener listens on a free loopback port.
func loopbackListener(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// serveHTTP serves h on ln (the plain-HTTP listener of the gateway).
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// serveTLS serves a line echo over TLS on ln with m's certificates, as the
// gateway's HTTPS listener would (GetCertificate + NextProtos).
func serveTLS(t *testing.T, ln net.Listener, m *Manager) {
	t.Helper()
	conf := &tls.Config{
		GetCertificate: m.GetCertificate,
		NextProtos:     append([]string{"http/1.1"}, m.NextProtos()...),
		MinVersion:     tls.VersionTLS12,
	}
	tln := tls.NewListener(ln, conf)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// dialTLS handshakes with addr for name, trusting roots.
func dialTLS(addr, name string, roots *x509.CertPool) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
}

func echo(c *tls.Conn, s string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", s); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != s+"\n" {
		return fmt.Errorf("echo: got %q, want %q", got, s)
	}
	return nil
}

func baseConfig(t *testing.T, p *acmetest.Pebble) Config {
	return Config{
		CA:           p.Dir,
		Email:        "ops@cometgate.test",
		Agreed:       true,
		Storage:      t.TempDir(),
		TrustedRoots: p.TLSCA,
		Logger:       testLogger(),
	}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// waitObtained waits until want certificates were obtained and are served.
func waitObtained(t *testing.T, m *Manager, want int64) {
	t.Helper()
	poll.Eventually(t, waitLimit, func() error {
		// cert_obtained fires before the certificate is in the cache;
		// Problems lists a managed name until it is.
		if o, _, f, _ := m.Stats(); o < want || len(m.Problems()) != 0 {
			return fmt.Errorf("obtained %d (failures %d), problems %q", o, f, m.Problems())
		}
		return nil
	})
}

// TestObtainHTTP01 obtains a certificate through HTTP-01 answered by
// HTTPChallenge, then verifies a TLS handshake with Pebble's root.
func TestObtainHTTP01(t *testing.T) {
	httpLn, httpPort := loopbackListener(t)
	tlsLn, _ := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: httpPort, TLSPort: 1})
	cfg := baseConfig(t, p)
	name := uniqueName("http")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeHTTP01}
	cfg.AltHTTPPort = httpPort
	m := newManager(t, cfg)
	if got := m.NextProtos(); len(got) != 0 {
		t.Fatalf("NextProtos without TLS-ALPN = %q, want none", got)
	}
	passed := make(chan string, 1)
	serveHTTP(t, httpLn, m.HTTPChallenge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case passed <- r.URL.Path:
		default:
		}
		http.NotFound(w, r)
	})))
	serveTLS(t, tlsLn, m)
	if got := m.Problems(); len(got) != 0 {
		t.Fatalf("Problems before Start = %q, want none", got)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)

	c, err := dialTLS(tlsLn.Addr().String(), name, p.Roots())
	if err != nil {
		t.Fatalf("handshake with Pebble's root: %v", err)
	}
	defer c.Close()
	if err := echo(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(tlsLn.Addr().String(), name, x509.NewCertPool()); err == nil {
		t.Fatal("handshake verified without Pebble's root")
	}

	// Other paths go to next.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/other", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-passed; got != "/other" {
		t.Fatalf("next got %q, want /other", got)
	}
	if p.Injected.Load() != 1 {
		t.Fatalf("injected badNonce = %d, want 1", p.Injected.Load())
	}
	t.Logf("orders %d, Pebble's own badNonce answers %d", p.Orders.Load(), p.BadNonces.Load())
}

// TestObtainTLSALPN01 obtains a certificate through TLS-ALPN-01 answered
// by the TLS listener itself (GetCertificate + NextProtos).
func TestObtainTLSALPN01(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort})
	cfg := baseConfig(t, p)
	name := uniqueName("alpn")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	m := newManager(t, cfg)
	if got := m.NextProtos(); !slices.Equal(got, []string{"acme-tls/1"}) {
		t.Fatalf("NextProtos = %q, want [acme-tls/1]", got)
	}
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)
	c, err := dialTLS(tlsLn.Addr().String(), name, p.Roots())
	if err != nil {
		t.Fatalf("handshake with Pebble's root: %v", err)
	}
	defer c.Close()
	if err := echo(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if pr := m.Problems(); len(pr) != 0 {
		t.Fatalf("problems: %q", pr)
	}
}

// TestRenewWhileConnected gets a 20-second certificate, keeps a TLS
// connection open while certmagic's maintenance renews it (renewal window
// half the lifetime, checked every second), and checks that the connection
// still works and new handshakes get the new certificate.
func TestRenewWhileConnected(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort, Validity: 20})
	cfg := baseConfig(t, p)
	name := uniqueName("renew")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	cfg.RenewalWindowRatio = 0.5
	cfg.RenewCheckInterval = time.Second
	cfg.DisableARI = true
	m := newManager(t, cfg)
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)
	addr := tlsLn.Addr().String()
	c, err := dialTLS(addr, name, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.ConnectionState().PeerCertificates[0]
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("certificate lifetime %v, want the short profile", life)
	}
	poll.Eventually(t, waitLimit, func() error {
		if _, r, f, _ := m.Stats(); r < 1 {
			return fmt.Errorf("renewed %d, failures %d, problems %q", r, f, m.Problems())
		}
		return nil
	})
	if err := echo(c, "still here"); err != nil {
		t.Fatalf("connection opened before renewal: %v", err)
	}
	poll.Eventually(t, waitLimit, func() error {
		c2, err := dialTLS(addr, name, p.Roots())
		if err != nil {
			return err
		}
		defer c2.Close()
		if got := c2.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return errors.New("new handshake still gets the first certificate")
		}
		return nil
	})
}

// TestRenewalFailureKeepsServing stops the CA once a certificate is in
// its renewal window: renewal fails and is reported, and the current
// certificate is still served.
func TestRenewalFailureKeepsServing(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort, Validity: 60})
	cfg := baseConfig(t, p)
	name := uniqueName("keep")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	cfg.RenewalWindowRatio = 0.9 // renew after 6 s
	cfg.RenewCheckInterval = time.Second
	cfg.DisableARI = true
	m := newManager(t, cfg)
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)
	p.Close()
	poll.Eventually(t, waitLimit, func() error {
		pr := strings.Join(m.Problems(), "\n")
		if !strings.Contains(pr, "renewing certificate for "+name+" failed") || !strings.Contains(pr, "still served") {
			return fmt.Errorf("problems: %q", pr)
		}
		return nil
	})
	c, err := dialTLS(tlsLn.Addr().String(), name, p.Roots())
	if err != nil {
		t.Fatalf("handshake after failed renewal: %v", err)
	}
	c.Close()
	if _, r, f, _ := m.Stats(); r != 0 || f < 1 {
		t.Fatalf("renewed %d failures %d, want 0 and >= 1", r, f)
	}
	t.Logf("problems: %q", m.Problems())
}

// TestOnDemand refuses a name outside the allowlist without an ACME order
// and obtains one for a name inside it during the handshake.
func TestOnDemand(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort})
	p.InjectNext.Store(false)
	cfg := baseConfig(t, p)
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	cfg.OnDemand = true
	cfg.Allow = []string{"*.ok.cometgate.test"}
	m := newManager(t, cfg)
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := tlsLn.Addr().String()

	if c, err := dialTLS(addr, "evil.cometgate.test", p.Roots()); err == nil {
		c.Close()
		t.Fatal("handshake for a name outside the allowlist succeeded")
	}
	if _, _, _, refused := m.Stats(); refused != 1 {
		t.Fatalf("refused = %d, want 1", refused)
	}
	if n := p.Orders.Load(); n != 0 {
		t.Fatalf("refused name reached Pebble: %d orders", n)
	}

	c, err := dialTLS(addr, "a.ok.cometgate.test", p.Roots())
	if err != nil {
		t.Fatalf("allowed name: %v (problems %q)", err, m.Problems())
	}
	defer c.Close()
	if err := echo(c, "hi"); err != nil {
		t.Fatal(err)
	}
	if n := p.Orders.Load(); n < 1 {
		t.Fatalf("orders = %d, want >= 1", n)
	}
	if o, _, _, refused := m.Stats(); o != 1 || refused != 1 {
		t.Fatalf("obtained %d refused %d, want 1 1", o, refused)
	}

	// The allowlist is managed at run time.
	if err := m.AllowName("b.other.test"); err != nil {
		t.Fatal(err)
	}
	m.DisallowName("*.ok.cometgate.test")
	if got := m.Allowed(); !slices.Equal(got, []string{"b.other.test"}) {
		t.Fatalf("Allowed = %q", got)
	}
	if c, err := dialTLS(addr, "c.ok.cometgate.test", p.Roots()); err == nil {
		c.Close()
		t.Fatal("handshake for a disallowed pattern succeeded")
	}
	if _, _, _, refused := m.Stats(); refused != 2 {
		t.Fatalf("refused = %d, want 2", refused)
	}
}

// TestOnDemandWithDomains obtains Domains eagerly while on-demand is on
// and serves them without consulting the allowlist.
func TestOnDemandWithDomains(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort})
	cfg := baseConfig(t, p)
	name := uniqueName("eager")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	cfg.OnDemand = true
	m := newManager(t, cfg)
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1) // before any handshake: eager
	addr := tlsLn.Addr().String()
	c, err := dialTLS(addr, name, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c, err := dialTLS(addr, "other.cometgate.test", p.Roots()); err == nil {
		c.Close()
		t.Fatal("handshake for a name outside the empty allowlist succeeded")
	}
	if o, _, _, refused := m.Stats(); o != 1 || refused != 1 {
		t.Fatalf("obtained %d refused %d, want 1 1", o, refused)
	}
}

// TestExternalAccountBinding obtains a certificate from a CA that requires
// EAB, and fails without it.
func TestExternalAccountBinding(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	const keyID, macKey = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort, EAB: map[string]string{keyID: macKey}})
	cfg := baseConfig(t, p)
	name := uniqueName("eab")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort

	without := newManager(t, cfg)
	if err := without.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, waitLimit, func() error {
		if pr := strings.Join(without.Problems(), "\n"); !strings.Contains(pr, "externalAccountRequired") {
			return fmt.Errorf("problems: %q", pr)
		}
		return nil
	})
	without.Close()

	cfg.Storage = t.TempDir()
	cfg.EAB = &EAB{KeyID: keyID, MACKey: macKey}
	m := newManager(t, cfg)
	serveTLS(t, tlsLn, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)
}

// TestFailedChallengeReason reports the CA's reason when validation fails.
func TestFailedChallengeReason(t *testing.T) {
	httpLn, httpPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: httpPort, TLSPort: 1})
	cfg := baseConfig(t, p)
	name := uniqueName("fail")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeHTTP01}
	cfg.AltHTTPPort = httpPort
	m := newManager(t, cfg)
	serveHTTP(t, httpLn, http.NotFoundHandler()) // the challenge handler is not mounted
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, waitLimit, func() error {
		pr := strings.Join(m.Problems(), "\n")
		if !strings.Contains(pr, "obtaining certificate for "+name+" failed: CA says:") ||
			!strings.Contains(pr, "404") || !strings.Contains(pr, "no certificate yet for "+name) {
			return fmt.Errorf("problems: %q", pr)
		}
		return nil
	})
	if _, _, f, _ := m.Stats(); f < 1 {
		t.Fatalf("failures = %d", f)
	}
	t.Logf("problems: %q", m.Problems())
}

// TestUnreachableCA names the CA in Problems.
func TestUnreachableCA(t *testing.T) {
	ln, port := loopbackListener(t)
	ln.Close() // nothing listens there now
	name := uniqueName("down")
	cfg := Config{
		CA:      fmt.Sprintf("https://127.0.0.1:%d/dir", port),
		Agreed:  true,
		Domains: []string{name},
		Storage: t.TempDir(),
		Logger:  testLogger(),
	}
	m := newManager(t, cfg)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, waitLimit, func() error {
		pr := strings.Join(m.Problems(), "\n")
		if !strings.Contains(pr, "ACME CA "+cfg.CA+" unreachable") || !strings.Contains(pr, "no certificate yet for "+name) {
			return fmt.Errorf("problems: %q", pr)
		}
		return nil
	})
}

// TestUnwritableStorage fails New with ErrStorage.
func TestUnwritableStorage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Config{Storage: filepath.Join(file, "certs")})
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("New = %v, want ErrStorage", err)
	}
	// Storage that breaks after New fails Start and shows in Problems.
	dir := filepath.Join(t.TempDir(), "acme")
	m := newManager(t, Config{Storage: dir, Logger: testLogger()})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); !errors.Is(err, ErrStorage) {
		t.Fatalf("Start = %v, want ErrStorage", err)
	}
	if pr := strings.Join(m.Problems(), "\n"); !strings.Contains(pr, "storage not writable") {
		t.Fatalf("problems: %q", pr)
	}
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "storage") {
		t.Fatalf("New without storage = %v", err)
	}
}

// TestConfigValidation names the field and bad value.
func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Storage: dir, Challenges: []string{"dns-01"}}, `challenges: "dns-01"`},
		{Config{Storage: dir, Allow: []string{"a.*.example.com"}}, `allow: "a.*.example.com"`},
		{Config{Storage: dir, Domains: []string{"bad name"}}, `domains: "bad name"`},
		{Config{Storage: dir, RenewalWindowRatio: 1.5}, "renewalWindowRatio: 1.5"},
		{Config{Storage: dir, EAB: &EAB{KeyID: "k"}}, "eab"},
	} {
		if _, err := New(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tc.cfg, err, tc.want)
		}
	}
}

// TestAllowlist checks exact names and one-label wildcard patterns.
// The gateway's certSource interface (package gateway), restated.
var _ interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	HTTPChallenge(next http.Handler) http.Handler
	NextProtos() []string
	Problems() []string
	Close() error
} = (*Manager)(nil)

func TestAllowlist(t *testing.T) {
	m := newManager(t, Config{Storage: t.TempDir(), OnDemand: true, Allow: []string{"A.example.com", "*.wild.test"}, Logger: testLogger()})
	for name, want := range map[string]bool{
		"a.example.com": true, "b.example.com": false, "x.wild.test": true,
		"wild.test": false, "x.y.wild.test": false,
	} {
		if got := m.decide(context.Background(), name) == nil; got != want {
			t.Errorf("decide(%q) allowed = %v, want %v", name, got, want)
		}
	}
	if err := m.AllowName("*.*.bad"); err == nil {
		t.Error("AllowName accepted *.*.bad")
	}
}

// TestCloseLeavesNoGoroutines obtains a certificate and closes the manager:
// certmagic's maintenance and the management jobs end.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	tlsLn, tlsPort := loopbackListener(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort})
	cfg := baseConfig(t, p)
	name := uniqueName("close")
	cfg.Domains = []string{name}
	cfg.Challenges = []string{ChallengeTLSALPN01}
	cfg.AltTLSALPNPort = tlsPort
	cfg.RenewCheckInterval = time.Second
	before := runtime.NumGoroutine()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(tlsLn, &tls.Config{GetCertificate: m.GetCertificate, NextProtos: m.NextProtos()})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitObtained(t, m, 1)
	if runtime.NumGoroutine() <= before {
		t.Fatal("no goroutine running while managed: the count cannot detect a leak")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	tlsLn.Close()
	<-done
	// The ACME client keeps idle keep-alive connections to the CA (certmagic
	// sets no idle timeout); a CA closes them in time, Pebble does so now.
	p.CloseClientConnections()
	poll.Eventually(t, waitLimit, func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines, %d before New:\n%s", n, before, buf)
		}
		return nil
	})
}
