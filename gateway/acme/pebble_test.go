package acme

import (
	"bytes"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// pebble is an in-process Pebble ACME server (the pinned
// github.com/letsencrypt/pebble/v2) behind an httptest TLS server. Its VA
// resolves every name to 127.0.0.1 through a loopback mock DNS server and
// validates HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort.
type pebble struct {
	srv   *httptest.Server
	ca    *ca.CAImpl
	dir   string         // directory URL
	tlsCA *x509.CertPool // trusts srv's own certificate (the ACME API)

	orders     atomic.Int64 // new-order requests that reached Pebble
	badNonces  atomic.Int64 // badNonce problems Pebble answered (its default 5% rejection)
	injected   atomic.Int64 // badNonce problems injected by the harness
	injectNext atomic.Bool  // inject one badNonce into the next new-order request
}

type pebbleOptions struct {
	httpPort, tlsPort int
	validity          uint64            // certificate lifetime in seconds; 0: Pebble's default (90 days)
	eab               map[string]string // external account keys by ID; non-empty: EAB required
}

func startPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	// PEBBLE_WFE_NONCEREJECT is left unset: Pebble's default 5% bad-nonce rate stays on.
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", 0) // not t.Log: Pebble's goroutines outlive the test
	}
	dnsAddr := startMockDNS(t)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: o.validity}}
	c := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	v := va.New(logger, o.httpPort, o.tlsPort, false, dnsAddr, store)
	for id, key := range o.eab {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatal(err)
		}
	}
	w := wfe.New(logger, store, v, c, []string{"pebble.letsencrypt.org"}, false, len(o.eab) > 0, 0, 0)

	p := &pebble{ca: c}
	api := w.Handler()
	p.injectNext.Store(true)
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			if p.injectNext.CompareAndSwap(true, false) {
				p.injectBadNonce(rw, api)
				return
			}
			p.orders.Add(1)
		}
		api.ServeHTTP(&sniffer{ResponseWriter: rw, p: p}, r)
	}))
	t.Cleanup(p.srv.Close)
	p.dir = p.srv.URL + "/dir"
	p.tlsCA = x509.NewCertPool()
	p.tlsCA.AddCert(p.srv.Certificate())
	return p
}

// injectBadNonce answers a request as Pebble does when it rejects a nonce,
// with a fresh nonce from Pebble, so the client must retry the request.
func (p *pebble) injectBadNonce(rw http.ResponseWriter, api http.Handler) {
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/nonce-plz", nil))
	p.injected.Add(1)
	rw.Header().Set("Replay-Nonce", rec.Header().Get("Replay-Nonce"))
	rw.Header().Set("Content-Type", "application/problem+json")
	rw.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(rw, `{"type":"urn:ietf:params:acme:error:badNonce","detail":"injected by the test harness","status":400}`)
}

// roots returns a pool with Pebble's root CA, which signs the certificates it issues.
func (p *pebble) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// sniffer counts Pebble's badNonce answers.
type sniffer struct {
	http.ResponseWriter
	p *pebble
}

func (s *sniffer) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("urn:ietf:params:acme:error:badNonce")) {
		s.p.badNonces.Add(1)
	}
	return s.ResponseWriter.Write(b)
}

// startMockDNS serves DNS over TCP on loopback, answering 127.0.0.1 to
// every A question and nothing to others.
func startMockDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}
