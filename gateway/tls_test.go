package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

// testCA is a certificate authority made for one test (ECDSA P-256).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cometgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate for 127.0.0.1 and localhost with serial
// number serial, and its PEM key.
func (ca *testCA) issue(t testing.TB, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// clientTLS trusts ca only.
func (ca *testCA) clientTLS() *tls.Config { return &tls.Config{RootCAs: ca.pool} }

// writeAtomic replaces name with data in one rename, as a rotation should.
func writeAtomic(t testing.TB, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// tlsServer starts a gateway in tls.mode files with a certificate of
// serial 100 from ca, its files looked at every 20ms unless opts say
// otherwise.
func tlsServer(t testing.TB, ca *testCA, configure func(*config.Config), opts ...gateway.Option) (srv *gatewaytest.Server, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, k := ca.issue(t, 100)
	writeAtomic(t, certFile, c)
	writeAtomic(t, keyFile, k)
	srv = gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
		c.API.Tokens = []string{metricsToken}
		c.TLS.Mode, c.TLS.CertFile, c.TLS.KeyFile = "files", certFile, keyFile
		if configure != nil {
			configure(c)
		}
	}, append([]gateway.Option{gateway.WithCertCheckInterval(20 * time.Millisecond)}, opts...)...)
	return srv, certFile, keyFile
}

// httpsClient is a long-polling client trusting ca; h2 selects HTTP/2
// (else HTTP/1.1 only).
func httpsClient(srv *gatewaytest.Server, ca *testCA, jar http.CookieJar, h2 bool) *gatewaytest.Client {
	c := gatewaytest.NewClient(srv.URL, jar)
	tr := &http.Transport{TLSClientConfig: ca.clientTLS(), ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	}
	c.HTTP.Transport = tr
	return c
}

// servedSerial opens a new TLS connection to addr and returns the serial
// number of the certificate served.
func servedSerial(ca *testCA, addr string) (int64, error) {
	conn, err := tls.Dial("tcp", addr, ca.clientTLS())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// Over HTTPS a Bayeux handshake succeeds, its cookie is Secure (and
// SameSite=None, which needs TLS), responses carry HSTS, and a websocket
// session over wss receives a broadcast with a Secure cookie on its
// upgrade.
func TestTLSFilesHTTPSAndWebSocket(t *testing.T) {
	ca := newTestCA(t)
	srv, _, _ := tlsServer(t, ca, func(c *config.Config) {
		c.Cookie.Secure = true
		c.Cookie.SameSite = "none"
		c.TLS.HSTS = config.HSTSConfig{MaxAge: config.Duration(time.Hour), IncludeSubdomains: true}
	})
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("URL = %s; want https", srv.URL)
	}
	ctx := gatewaytest.Context(t)
	pub := httpsClient(srv, ca, nil, false)
	r, msgs, err := pub.Handshake(ctx, nil)
	if err != nil || !r.Successful() {
		t.Fatalf("handshake over HTTPS: %v, %v, %v", r, msgs, err)
	}
	_, resp, err := pub.Send(ctx, pub.NewMessage("/meta/connect", M{"connectionType": "long-polling"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.TLS == nil {
		t.Fatal("connect answered without TLS")
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=3600; includeSubDomains" {
		t.Errorf("Strict-Transport-Security = %q; want max-age=3600; includeSubDomains", got)
	}
	jarCookies := pub.HTTP.Jar.Cookies(resp.Request.URL)
	if len(jarCookies) != 1 {
		t.Fatalf("cookies kept = %v; want BAYEUX_BROWSER", jarCookies)
	}

	w, up, err := gatewaytest.DialWebSocketTLS(ctx, srv.WSURL, nil, ca.clientTLS())
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	t.Cleanup(w.Close)
	var upCookie *http.Cookie
	for _, c := range up.Cookies() {
		if c.Name == "BAYEUX_BROWSER" {
			upCookie = c
		}
	}
	if upCookie == nil || !upCookie.Secure || upCookie.SameSite != http.SameSiteNoneMode {
		t.Errorf("websocket upgrade cookie = %v; want Secure; SameSite=None", upCookie)
	}
	subscribeAndHold(t, w, "/tls")
	if r, _, err := pub.Publish(ctx, "/tls", M{"n": 1}, nil); err != nil || !r.Successful() {
		t.Fatalf("publish: %v, %v", r, err)
	}
	if _, err := w.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/tls" }); err != nil {
		t.Fatalf("wss session did not receive: %v", err)
	}
}

// TestTLSSecureCookieOnHandshake checks the Set-Cookie of a handshake over
// HTTPS directly (the jar hides attributes).
func TestTLSSecureCookieOnHandshake(t *testing.T) {
	ca := newTestCA(t)
	srv, _, _ := tlsServer(t, ca, func(c *config.Config) { c.Cookie.Secure = true })
	c := httpsClient(srv, ca, nil, true)
	_, resp, err := c.Send(gatewaytest.Context(t), c.NewMessage("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}}))
	if err != nil {
		t.Fatal(err)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].Secure {
		t.Errorf("handshake Set-Cookie = %v; want one Secure cookie", resp.Header.Values("Set-Cookie"))
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("Strict-Transport-Security sent with tls.hsts.maxAge 0")
	}
}

// subscribeAndHold handshakes w, subscribes it to channel and leaves a
// connect held.
func subscribeAndHold(t *testing.T, w *gatewaytest.WSClient, channel string) {
	t.Helper()
	if r, _, err := w.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": channel}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket"}); err != nil || !r.Successful() {
		t.Fatalf("connect: %v, %v", r, err)
	}
	if err := w.Send(w.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
}

// Two sessions of one browser (one cookie jar) both hold a long poll over
// HTTP/2, with no multiple-clients advice (bayeux.http2MaxSessionsPerBrowser
// -1), while over HTTP/1.1 the second gets the advice
// (maxSessionsPerBrowser 1).
func TestTLSHTTP2LongPollsUnlimitedPerBrowser(t *testing.T) {
	ca := newTestCA(t)
	srv, _, _ := tlsServer(t, ca, nil)
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			ctx := gatewaytest.Context(t)
			jar, _ := cookiejar.New(nil)
			tabs := []*gatewaytest.Client{httpsClient(srv, ca, jar, h2), httpsClient(srv, ca, jar, h2)}
			for _, c := range tabs {
				if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
					t.Fatalf("handshake: %v, %v", r, err)
				}
				if r, _, err := c.Connect(ctx, nil); err != nil || !r.Successful() { // answered at once
					t.Fatalf("first connect: %v, %v", r, err)
				}
			}
			_, held0 := srv.Engine().SessionCounts()
			limited0 := srv.Transport().Counts().BrowserLimited
			type result struct {
				reply  M
				proto  int
				advice M
				err    error
			}
			results := make([]result, len(tabs))
			var wg sync.WaitGroup
			for i, c := range tabs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msgs, resp, err := c.Send(ctx, c.NewMessage("/meta/connect", M{"connectionType": "long-polling"}))
					if err != nil {
						results[i].err = err
						return
					}
					results[i].proto = resp.ProtoMajor
					var r M
					for _, m := range msgs {
						if m.Channel() == "/meta/connect" {
							r = m
						}
					}
					results[i].reply, results[i].advice = r, r.Obj("advice")
				}()
			}
			// Over HTTP/2 both polls are held at once; over HTTP/1.1 one is,
			// and the other is answered with the advice. Then a disconnect of
			// each session answers what is held.
			wantHeld, wantLimited := 2, int64(0)
			if !h2 {
				wantHeld, wantLimited = 1, 1
			}
			gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
				_, held := srv.Engine().SessionCounts()
				limited := srv.Transport().Counts().BrowserLimited - limited0
				if held-held0 != wantHeld || limited != wantLimited {
					return fmt.Errorf("%d connects held, %d refused by the browser limit; want %d, %d", held-held0, limited, wantHeld, wantLimited)
				}
				return nil
			})
			for _, c := range tabs {
				srv.Engine().Session(c.ClientID).Disconnect()
			}
			wg.Wait()
			multiple := 0
			for i, r := range results {
				if r.err != nil {
					t.Fatalf("tab %d: %v", i, r.err)
				}
				wantProto := 1
				if h2 {
					wantProto = 2
				}
				if r.proto != wantProto {
					t.Errorf("tab %d: answered over HTTP/%d; want %d", i, r.proto, wantProto)
				}
				if r.advice != nil && r.advice["multiple-clients"] == true {
					multiple++
				}
			}
			want := 0
			if !h2 {
				want = 1
			}
			if multiple != want {
				t.Errorf("%d tabs got the multiple-clients advice; want %d (results %+v)", multiple, want, results)
			}
		})
	}
}

// The plain-HTTP listener redirects to https, on the TLS port, keeping
// the path and query.
func TestTLSPlainListenerRedirects(t *testing.T) {
	ca := newTestCA(t)
	srv, _, _ := tlsServer(t, ca, func(c *config.Config) { c.TLS.HTTPListen = "127.0.0.1:0" })
	port := srv.Addr().(*net.TCPAddr).Port
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for host, want := range map[string]string{
		"":                "https://127.0.0.1:%d/cometd/handshake?a=b",
		"chat.example:80": "https://chat.example:%d/cometd/handshake?a=b",
		"chat.example":    "https://chat.example:%d/cometd/handshake?a=b",
	} {
		req, _ := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, "http://"+srv.HTTPAddr().String()+"/cometd/handshake?a=b", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != fmt.Sprintf(want, port) {
			t.Errorf("Host %q: %s to %q; want 308 to %q", host, resp.Status, resp.Header.Get("Location"), fmt.Sprintf(want, port))
		}
	}
}

// Rotating the files on disk serves the new certificate to new
// connections while a wss session stays connected and keeps receiving;
// a pair that does not match is refused, counted, and the last good one
// kept; /metrics reports the expiry and the failure.
func TestTLSFilesRotation(t *testing.T) {
	ca := newTestCA(t)
	srv, certFile, keyFile := tlsServer(t, ca, nil)
	ctx := gatewaytest.Context(t)
	addr := srv.Addr().String()
	if n, err := servedSerial(ca, addr); err != nil || n != 100 {
		t.Fatalf("served serial %d, %v; want 100", n, err)
	}
	w, _, err := gatewaytest.DialWebSocketTLS(ctx, srv.WSURL, nil, ca.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	subscribeAndHold(t, w, "/rot")
	pub := httpsClient(srv, ca, nil, true)
	if r, _, err := pub.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("publisher: %v, %v", r, err)
	}
	publishAndReceive := func(n int) {
		t.Helper()
		if r, _, err := pub.Publish(ctx, "/rot", M{"n": n}, nil); err != nil || !r.Successful() {
			t.Fatalf("publish %d: %v, %v", n, r, err)
		}
		if _, err := w.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool {
			return m.Channel() == "/rot" && m.Obj("data")["n"] == float64(n)
		}); err != nil {
			t.Fatalf("message %d not received: %v", n, err)
		}
	}
	publishAndReceive(1)

	c, k := ca.issue(t, 200)
	writeAtomic(t, keyFile, k)
	writeAtomic(t, certFile, c)
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if n, err := servedSerial(ca, addr); err != nil || n != 200 {
			return fmt.Errorf("served serial %d, %v; want 200", n, err)
		}
		return nil
	})
	publishAndReceive(2) // the session opened before the rotation goes on

	// A certificate whose key is not the key file's: refused, old kept.
	bad, _ := ca.issue(t, 300)
	writeAtomic(t, certFile, bad)
	metricsURL := "http://" + srv.APIAddr().String() + "/metrics"
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		series, _, err := scrape(ctx, metricsURL, metricsToken)
		if err != nil {
			return err
		}
		if v := series["cometgate_tls_certificate_load_failures_total"]; v != 1 {
			return fmt.Errorf("load failures = %v; want 1", v)
		}
		if v := series["cometgate_tls_certificate_expiry_seconds"]; v < 11*3600 || v > 12*3600 {
			return fmt.Errorf("expiry seconds = %v; want about 12h", v)
		}
		return nil
	})
	if n, err := servedSerial(ca, addr); err != nil || n != 200 {
		t.Errorf("after a bad pair: served serial %d, %v; want 200 kept", n, err)
	}
	if ok, why := srv.Ready(); !ok {
		t.Errorf("Ready() = false, %v; want ready while a valid certificate is served", why)
	}
	publishAndReceive(3)
}

// Start fails clearly, and undoes itself, on certificate files that do not
// load and on tls.mode auto with storage it cannot write (no CA is
// contacted: storage is checked first).
func TestTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tls  config.TLSConfig
		want string
	}{
		"missing files": {config.TLSConfig{Mode: "files", CertFile: filepath.Join(dir, "none.pem"), KeyFile: filepath.Join(dir, "none.key")}, "tls.certFile"},
		"auto, unwritable storage": {config.TLSConfig{Mode: "auto", ACME: config.ACMEConfig{
			Agree: true, Domains: []string{"chat.example"}, CA: "https://127.0.0.1:1/directory",
			Storage: filepath.Join(notADir, "certs"),
		}}, "storage"},
	} {
		cfg := config.Default()
		cfg.Listen, cfg.API.Listen = "127.0.0.1:0", "off"
		cfg.Demo.Enabled = config.Bool(false)
		cfg.TLS = tc.tls
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := gateway.Check(cfg); tc.tls.Mode == "files" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Check() = %v; want an error naming %q", name, err, tc.want)
		}
		srv, err := gateway.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = srv.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Start() = %v; want an error naming %q", name, err, tc.want)
		}
		if srv.Addr() != nil {
			t.Errorf("%s: listening on %v after a failed start", name, srv.Addr())
		}
		if !srv.Engine().Closing() {
			t.Errorf("%s: engine left running", name)
		}
	}
}

// Reload (SIGHUP) looks at the certificate files at once, even with no
// periodic check and no configuration file.
func TestTLSReloadRereadsCertificates(t *testing.T) {
	ca := newTestCA(t)
	srv, certFile, keyFile := tlsServer(t, ca, nil, gateway.WithCertCheckInterval(0))
	addr := srv.Addr().String()
	c, k := ca.issue(t, 200)
	writeAtomic(t, keyFile, k)
	writeAtomic(t, certFile, c)
	if n, err := servedSerial(ca, addr); err != nil || n != 100 {
		t.Fatalf("before Reload: served serial %d, %v; want 100 (no periodic check)", n, err)
	}
	if _, err := srv.Reload(gatewaytest.Context(t)); !errors.Is(err, gateway.ErrNoConfigFile) {
		t.Fatalf("Reload() = %v; want ErrNoConfigFile", err)
	}
	if n, err := servedSerial(ca, addr); err != nil || n != 200 {
		t.Errorf("after Reload: served serial %d, %v; want 200", n, err)
	}
}

// BenchmarkTLSHandshake measures full TLS handshakes (no resumption) with
// the public listener, ECDSA P-256 certificate, over loopback: each op is
// one connection, the client's work included. Run with -cpu 1 for the
// handshakes one core does.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, tc := range []struct {
		name    string
		version uint16
		curve   tls.CurveID
	}{
		{"TLS1.3-X25519MLKEM768", tls.VersionTLS13, tls.X25519MLKEM768},
		{"TLS1.3-X25519", tls.VersionTLS13, tls.X25519},
		{"TLS1.2-X25519", tls.VersionTLS12, tls.X25519},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ca := newTestCA(b)
			srv, _, _ := tlsServer(b, ca, nil)
			cfg := ca.clientTLS()
			cfg.MinVersion, cfg.MaxVersion = tc.version, tc.version
			cfg.CurvePreferences = []tls.CurveID{tc.curve}
			addr := srv.Addr().String()
			b.ReportAllocs()
			for b.Loop() {
				conn, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}

// A plain-HTTP listener that cannot listen fails Start, which closes the
// public listener it had opened and stops the certificate source.
func TestTLSStartUndoesOnHTTPListenFailure(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, k := ca.issue(t, 100)
	writeAtomic(t, certFile, c)
	writeAtomic(t, keyFile, k)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := free.Addr().String()
	free.Close()

	cfg := config.Default()
	cfg.Listen, cfg.API.Listen = public, "off"
	cfg.Demo.Enabled = config.Bool(false)
	cfg.TLS = config.TLSConfig{Mode: "files", CertFile: certFile, KeyFile: keyFile, HTTPListen: busy.Addr().String()}
	cfg.SetDefaults()
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "tls.httpListen") {
		t.Fatalf("Start() = %v; want an error naming tls.httpListen", err)
	}
	again, err := net.Listen("tcp", public)
	if err != nil {
		t.Fatalf("the public listener was left open after a failed start: %v", err)
	}
	again.Close()
	if !srv.Engine().Closing() {
		t.Error("engine left running after a failed start")
	}
}

// api.tls.public: the control API's own listener serves TLS with the
// public listener's certificate (files mode here), and nothing in clear.
func TestAPIUsesPublicCertificates(t *testing.T) {
	ca := newTestCA(t)
	srv, _, _ := tlsServer(t, ca, func(c *config.Config) { c.API.TLS.Public = true })
	api := srv.APIAddr().String()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(), ForceAttemptHTTP2: true}, Timeout: gatewaytest.DefaultTimeout}
	resp, err := hc.Get("https://" + api + "/readyz")
	if err != nil {
		t.Fatalf("API over TLS with the public certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 100 {
		t.Errorf("GET /readyz: status %d, TLS %v; want 200 with the public certificate (serial 100)", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + api + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the API answered in clear")
		}
	}
	cfg := config.Default()
	cfg.API.TLS.Public = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "api.tls.public") {
		t.Errorf("api.tls.public without tls.mode: Validate() = %v; want it refused", err)
	}
}
