package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/cometgate/cometgate/gateway/acme"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/config"
)

// certSource provides the public listener's certificates: tls.mode files
// (fileCerts) or auto (the ACME manager, acmeCerts).
type certSource interface {
	// GetCertificate returns the certificate for a TLS handshake
	// (tls.Config.GetCertificate). A source may swap certificates at any
	// time: connections already established keep theirs.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// HTTPChallenge wraps the plain-HTTP listener's handler (tls.httpListen)
	// to answer ACME HTTP-01 challenges; other requests go to next.
	HTTPChallenge(next http.Handler) http.Handler
	// NextProtos lists the ALPN protocols the source needs offered besides
	// h2 and http/1.1 (acme-tls/1 for TLS-ALPN-01), or none.
	NextProtos() []string
	// Problems lists what keeps the source from serving a valid
	// certificate, one line each ("certificate expired at ..."); each makes
	// /readyz answer 503. A source still serving a valid certificate while
	// a reload or renewal fails reports nothing here: that failure is
	// logged and counted (see certLoadFailures).
	Problems() []string
	// Close stops the source's background work (watching files, renewals).
	Close() error
}

// certLoadFailures is implemented by sources that count the certificates
// they could not load or obtain, for
// cometgate_tls_certificate_load_failures_total.
type certLoadFailures interface {
	LoadFailures() int64
}

// defaultCertCheck is how often tls.mode files looks at its files for a
// change.
const defaultCertCheck = 5 * time.Second

// WithCertCheckInterval sets how often tls.mode files looks for changed
// certificate files. Default 5s; tests shorten it.
func WithCertCheckInterval(d time.Duration) Option {
	return optionFunc(func(s *Server) { s.certCheck = d })
}

// newCertSource builds the certificate source cfg names.
func newCertSource(ctx context.Context, cfg config.TLSConfig, every time.Duration, tune func(*acme.Config), log *slog.Logger) (certSource, error) {
	switch cfg.Mode {
	case "files":
		return newFileCerts(cfg.CertFile, cfg.KeyFile, every, log)
	case "auto":
		src, err := newACMECerts(ctx, cfg, tune, log)
		if err != nil {
			return nil, fmt.Errorf("tls.mode auto: %w", err)
		}
		return src, nil
	}
	return nil, fmt.Errorf("tls.mode: %q: no certificate source", cfg.Mode)
}

// fileCerts serves a certificate and key read from PEM files, and reloads
// them when either file's size or modification time changes (checked
// every few seconds, and by check on SIGHUP). A pair that does not load
// is logged and counted, and the one served before is kept.
type fileCerts struct {
	certFile, keyFile string
	log               *slog.Logger

	cert     atomic.Pointer[tls.Certificate] // served; never nil after newFileCerts
	failures atomic.Int64                    // pairs that failed to load

	mu    sync.Mutex // guards stamp; serialises check
	stamp [2]fileStamp

	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when watch returns
	closeOnce sync.Once
}

var (
	_ certSource       = (*fileCerts)(nil)
	_ certLoadFailures = (*fileCerts)(nil)
)

// fileStamp is what tells a changed file: its size and modification time.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// newFileCerts loads the pair and, if every > 0, watches the files until
// Close.
func newFileCerts(certFile, keyFile string, every time.Duration, log *slog.Logger) (*fileCerts, error) {
	f := &fileCerts{certFile: certFile, keyFile: keyFile, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	stamp, err := f.stamps()
	if err != nil {
		return nil, fmt.Errorf("tls.certFile/keyFile: %w", err)
	}
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.stamp = stamp
	f.cert.Store(cert)
	log.Info("tls: certificate loaded", "certFile", certFile, "subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
	if every <= 0 {
		close(f.done)
		return f, nil
	}
	go f.watch(every)
	return f, nil
}

func (f *fileCerts) stamps() ([2]fileStamp, error) {
	c, err := stampOf(f.certFile)
	if err != nil {
		return [2]fileStamp{}, err
	}
	k, err := stampOf(f.keyFile)
	return [2]fileStamp{c, k}, err
}

// load reads and checks the pair.
func (f *fileCerts) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.certFile %s, tls.keyFile %s: %w", f.certFile, f.keyFile, err)
	}
	return &cert, nil // Leaf is set by LoadX509KeyPair
}

// watch checks the files every period until Close.
func (f *fileCerts) watch(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.check()
		}
	}
}

// check reloads the pair if either file changed since the last look. A
// pair that fails to load (a half-written rotation, a key that does not
// match) is logged and counted; the served certificate stays until the
// files change again and load.
func (f *fileCerts) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	stamp, err := f.stamps()
	if err == nil && stamp == f.stamp {
		return
	}
	f.stamp = stamp
	var cert *tls.Certificate
	if err == nil {
		cert, err = f.load()
	}
	if err != nil {
		f.failures.Add(1)
		f.log.Error("tls: certificate files changed but do not load; the served certificate is kept", "err", err)
		return
	}
	f.cert.Store(cert)
	f.log.Info("tls: certificate reloaded", "certFile", f.certFile, "subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
}

// GetCertificate returns the served pair, whatever the name asked.
func (f *fileCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert.Load(), nil
}

// HTTPChallenge answers no challenge: it returns next.
func (f *fileCerts) HTTPChallenge(next http.Handler) http.Handler { return next }

// NextProtos returns none.
func (f *fileCerts) NextProtos() []string { return nil }

// Problems reports a served certificate that has expired or is not yet
// valid.
func (f *fileCerts) Problems() []string {
	leaf := f.cert.Load().Leaf
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		return []string{"tls: certificate " + f.certFile + " expired at " + leaf.NotAfter.UTC().Format(time.RFC3339)}
	case now.Before(leaf.NotBefore):
		return []string{"tls: certificate " + f.certFile + " not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)}
	}
	return nil
}

// LoadFailures counts the changed pairs that did not load.
func (f *fileCerts) LoadFailures() int64 { return f.failures.Load() }

// Close stops watching the files.
func (f *fileCerts) Close() error {
	f.closeOnce.Do(func() { close(f.stop) })
	<-f.done
	return nil
}

// publicTLS is the public listener's TLS configuration: TLS 1.2 or later
// (1.3 whenever the client offers it, the crypto/tls default), forward-
// secret AEAD suites for 1.2, X25519 and P-256 key exchange (with the
// post-quantum hybrid first), and ALPN h2, http/1.1 and what the source
// needs. A browser's websocket goes over its own HTTP/1.1 connection:
// the server does not offer extended CONNECT on HTTP/2 (RFC 8441).
func (s *Server) publicTLS(src certSource) *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if s.cfg.TLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion: minVersion,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := src.GetCertificate(hello)
			if err == nil && cert != nil && cert.Leaf != nil {
				s.certExpiry.Store(cert.Leaf.NotAfter.Unix())
			}
			return cert, err
		},
		NextProtos:       append([]string{"h2", "http/1.1"}, src.NextProtos()...),
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// hsts adds Strict-Transport-Security to the responses of TLS requests
// when tls.hsts.maxAge is set.
func (s *Server) hsts(next http.Handler) http.Handler {
	h := s.cfg.TLS.HSTS
	if h.MaxAge <= 0 {
		return next
	}
	value := "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
	if h.IncludeSubdomains {
		value += "; includeSubDomains"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", value)
		}
		next.ServeHTTP(w, r)
	})
}

// plainHandler serves tls.httpListen: the source's ACME HTTP-01
// challenges, then a redirect to HTTPS (or 404 with tls.redirect false).
func (s *Server) plainHandler(src certSource) http.Handler {
	next := http.NotFoundHandler()
	if *s.cfg.TLS.Redirect {
		next = http.HandlerFunc(s.redirectToHTTPS)
	}
	return src.HTTPChallenge(next)
}

// redirectToHTTPS answers 308 with the same URL on https, at the public
// listener's port (omitted when 443).
func (s *Server) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		http.Error(w, "a Host header is required", http.StatusBadRequest)
		return
	}
	port := "443"
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	if port == "443" {
		if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
			host = "[" + host + "]"
		}
	} else {
		host = net.JoinHostPort(host, port)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// CertificateExpiry returns when the certificate last served on the
// public listener expires; zero without TLS or before the first handshake.
func (s *Server) CertificateExpiry() time.Time {
	if n := s.certExpiry.Load(); n != 0 {
		return time.Unix(n, 0)
	}
	return time.Time{}
}

// certificateLoadFailures counts the certificates the source could not
// load or obtain.
func (s *Server) certificateLoadFailures() int64 {
	if c, ok := s.certs.(certLoadFailures); ok {
		return c.LoadFailures()
	}
	return 0
}

// HTTPAddr returns the address of the plain-HTTP listener (tls.httpListen),
// once started, or nil when there is none.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plainListener == nil {
		return nil
	}
	return s.plainListener.Addr()
}
