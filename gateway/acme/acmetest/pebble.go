// Package acmetest runs Pebble, the ACME test server, in process for
// tests: its CA, validation authority and web front end (the pinned
// github.com/letsencrypt/pebble/v2) behind an httptest TLS server, with a
// loopback DNS server that resolves every name to 127.0.0.1.
package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
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

// Pebble is an in-process Pebble ACME server (the pinned
// github.com/letsencrypt/pebble/v2) behind an httptest TLS server. Its VA
// resolves every name to 127.0.0.1 through a loopback mock DNS server and
// validates HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort.
type Pebble struct {
	srv *httptest.Server
	ca  *ca.CAImpl
	// Dir is the ACME directory URL.
	Dir string
	// TLSCA trusts the ACME API's own certificate (not the issued ones).
	TLSCA *x509.CertPool
	// TLSCAPEM is TLSCA as PEM, for a configuration file.
	TLSCAPEM []byte

	Orders     atomic.Int64 // new-order requests that reached Pebble
	BadNonces  atomic.Int64 // badNonce problems Pebble answered (its default 5% rejection)
	Injected   atomic.Int64 // badNonce problems injected by the harness
	InjectNext atomic.Bool  // inject one badNonce into the next new-order request
}

// Options configure StartPebble.
type Options struct {
	HTTPPort, TLSPort int               // where the VA validates HTTP-01 and TLS-ALPN-01
	Validity          uint64            // certificate lifetime in seconds; 0: Pebble's default (90 days)
	EAB               map[string]string // external account keys by ID; non-empty: EAB required
}

// StartPebble starts Pebble for the test's duration. It sets
// PEBBLE_VA_NOSLEEP and leaves Pebble's 5% bad-nonce rate on; the first
// new-order request also gets an injected bad nonce.
func StartPebble(t *testing.T, o Options) *Pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	// PEBBLE_WFE_NONCEREJECT is left unset: Pebble's default 5% bad-nonce rate stays on.
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", 0) // not t.Log: Pebble's goroutines outlive the test
	}
	dnsAddr := startMockDNS(t)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: o.Validity}}
	c := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	v := va.New(logger, o.HTTPPort, o.TLSPort, false, dnsAddr, store)
	for id, key := range o.EAB {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatal(err)
		}
	}
	w := wfe.New(logger, store, v, c, []string{"pebble.letsencrypt.org"}, false, len(o.EAB) > 0, 0, 0)

	p := &Pebble{ca: c}
	api := w.Handler()
	p.InjectNext.Store(true)
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			if p.InjectNext.CompareAndSwap(true, false) {
				p.injectBadNonce(rw, api)
				return
			}
			p.Orders.Add(1)
		}
		api.ServeHTTP(&sniffer{ResponseWriter: rw, p: p}, r)
	}))
	t.Cleanup(p.srv.Close)
	p.Dir = p.srv.URL + "/dir"
	p.TLSCA = x509.NewCertPool()
	p.TLSCA.AddCert(p.srv.Certificate())
	p.TLSCAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return p
}

// injectBadNonce answers a request as Pebble does when it rejects a nonce,
// with a fresh nonce from Pebble, so the client must retry the request.
func (p *Pebble) injectBadNonce(rw http.ResponseWriter, api http.Handler) {
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/nonce-plz", nil))
	p.Injected.Add(1)
	rw.Header().Set("Replay-Nonce", rec.Header().Get("Replay-Nonce"))
	rw.Header().Set("Content-Type", "application/problem+json")
	rw.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(rw, `{"type":"urn:ietf:params:acme:error:badNonce","detail":"injected by the test harness","status":400}`)
}

// Roots returns a pool with Pebble's root CA, which signs the certificates it issues.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// sniffer counts Pebble's badNonce answers.
type sniffer struct {
	http.ResponseWriter
	p *Pebble
}

func (s *sniffer) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("urn:ietf:params:acme:error:badNonce")) {
		s.p.BadNonces.Add(1)
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

// Close stops Pebble's ACME API (the server is also closed at the test's
// end): clients then find the CA unreachable.
func (p *Pebble) Close() { p.srv.Close() }

// CloseClientConnections closes the connections clients hold to the ACME
// API, idle keep-alive ones included.
func (p *Pebble) CloseClientConnections() { p.srv.CloseClientConnections() }
