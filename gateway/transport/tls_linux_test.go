package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/gorilla/websocket"
)

// testCA makes a CA and a certificate for 127.0.0.1 it signs, both ECDSA
// P-256; it returns the server's TLS config and a pool trusting the CA.
func testCA(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cometgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return cfg, pool
}

// tlsServer serves a handler over TLS on loopback.
type tlsServer struct {
	h    *Handler
	url  string // wss://...
	pool *x509.CertPool
}

func newTLSServer(t *testing.T, cfg Config) *tlsServer { return serveTLS(t, cfg, false) }

// serveTLS serves a handler of cfg over TLS on loopback; with wrap, the
// listener wraps each TLS connection it accepts, as a per-address limit
// outside TLS would.
func serveTLS(t *testing.T, cfg Config, wrap bool) *tlsServer {
	t.Helper()
	e := engine.New(engine.Config{Timeout: time.Second})
	e.Start(context.Background())
	h := NewHandler(e, cfg)
	if cfg.WebSocket.Poller && h.poller == nil {
		t.Fatal("no poller on Linux")
	}
	srv := httptest.NewUnstartedServer(h)
	var pool *x509.CertPool
	srv.TLS, pool = testCA(t)
	if wrap {
		srv.TLS.NextProtos = []string{"http/1.1"}
		srv.Listener = &wrapListener{tls.NewListener(srv.Listener, srv.TLS)}
		srv.Start()
	} else {
		srv.StartTLS()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
		srv.Close()
		if h.poller != nil {
			h.poller.close()
		}
	})
	return &tlsServer{h: h, url: "wss://" + srv.Listener.Addr().String(), pool: pool}
}

// wrapListener wraps the connections of its listener in wrapConn.
type wrapListener struct{ net.Listener }

func (l *wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wrapConn{c}, nil
}

type wrapConn struct{ net.Conn }

func (c *wrapConn) NetConn() net.Conn { return c.Conn }

// corkConn holds the client's writes while corked, so that several TLS
// records reach the server in one segment.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   []byte
}

func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *corkConn) cork() { c.mu.Lock(); c.corked = true; c.mu.Unlock() }

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// wssClient is one websocket client over TLS whose records the test can
// shape: tc writes raw (masked) frames, each Write one record.
type wssClient struct {
	t    testing.TB
	ws   *websocket.Conn
	tc   *tls.Conn
	sock *corkConn
	id   string
	got  []map[string]any // messages read but not yet returned by next
}

func dialWSS(t testing.TB, s *tlsServer) *wssClient {
	t.Helper()
	c := &wssClient{t: t}
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c.sock = &corkConn{Conn: raw}
			c.tc = tls.Client(c.sock, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
			return c.tc, c.tc.HandshakeContext(ctx)
		},
	}
	ws, _, err := d.Dial(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c.ws = ws
	return c
}

// frame returns payload as one masked text frame (mask key zero).
func frame(payload string) []byte {
	f := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

// next returns the next message on channel (a reply on a meta channel,
// else an event), skipping others.
func (c *wssClient) next(channel string) map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		for len(c.got) > 0 {
			m := c.got[0]
			c.got = c.got[1:]
			_, reply := m["successful"]
			if m["channel"] == channel && (reply == strings.HasPrefix(channel, "/meta/")) {
				return m
			}
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", channel, err)
		}
		if err := json.Unmarshal(data, &c.got); err != nil {
			c.t.Fatalf("bad frame %s: %v", data, err)
		}
	}
}

// text returns the text of a /chat message's data.
func text(m map[string]any) string {
	d, _ := m["data"].(map[string]any)
	s, _ := d["text"].(string)
	return s
}

func (c *wssClient) send(batch string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(batch)); err != nil {
		c.t.Fatal(err)
	}
}

// join handshakes, subscribes to /chat and leaves a connect held.
func (c *wssClient) join() {
	c.t.Helper()
	c.send(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
	c.id, _ = c.next("/meta/handshake")["clientId"].(string)
	if c.id == "" {
		c.t.Fatal("handshake without clientId")
	}
	c.send(`[{"channel":"/meta/subscribe","clientId":"` + c.id + `","subscription":"/chat"}]`)
	if m := c.next("/meta/subscribe"); m["successful"] != true {
		c.t.Fatalf("subscribe: %v", m)
	}
	c.send(`[{"channel":"/meta/connect","clientId":"` + c.id + `","connectionType":"websocket","advice":{"timeout":0}}]`)
	c.next("/meta/connect")
	c.send(`[{"channel":"/meta/connect","clientId":"` + c.id + `","connectionType":"websocket"}]`)
}

func (c *wssClient) publish(id string) string {
	return `{"channel":"/chat","clientId":"` + c.id + `","id":"` + id + `","data":{"text":"` + id + `"}}`
}

// waitIdle waits until the poller watches n connections, all of them
// TLS, and none is being read: each waits for readability with no
// goroutine.
func waitIdle(t *testing.T, h *Handler, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.poller.mu.Lock()
		watched, idle := len(h.poller.conns), 0
		for _, c := range h.poller.conns {
			if c.tls && !c.reading.Load() {
				idle++
			}
		}
		h.poller.mu.Unlock()
		if watched == n && idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("poller watches %d connections, %d idle TLS ones; want %d", watched, idle, n)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
}

var polledConfig = Config{WebSocket: WebSocketConfig{Poller: true}}

// Without the poller, a TLS websocket connection has a reader goroutine
// and its frames are written through the TLS layer, never to the socket
// under it.
func TestTLSReaderGoroutine(t *testing.T) {
	s := newTLSServer(t, Config{})
	a, b := dialWSS(t, s), dialWSS(t, s)
	a.join()
	b.join()
	b.send("[" + b.publish("g1") + "]")
	if m := a.next("/chat"); text(m) != "g1" {
		t.Fatalf("got %v; want g1", m)
	}
}

// A TLS websocket session is served by the poller: it receives what is
// published while it idles, and the frames it sends after idling are read.
func TestPolledTLSIdleSession(t *testing.T) {
	s := newTLSServer(t, polledConfig)
	a, b := dialWSS(t, s), dialWSS(t, s)
	a.join()
	b.join()
	for i := range 3 {
		waitIdle(t, s.h, 2)
		id := fmt.Sprint("m", i)
		b.send("[" + b.publish(id) + "]")
		for _, c := range []*wssClient{a, b} {
			if m := c.next("/chat"); text(m) != id {
				t.Fatalf("got %v; want %s", m, id)
			}
		}
		waitIdle(t, s.h, 2)
		id = fmt.Sprint("n", i)
		a.send("[" + a.publish(id) + "]")
		for _, c := range []*wssClient{a, b} {
			if m := c.next("/chat"); text(m) != id {
				t.Fatalf("got %v; want %s", m, id)
			}
		}
	}
}

// Frames the TLS layer buffered beyond what one read took are processed
// without waiting for more data: several frames in one record, several
// records in one segment, records larger than the library's reader.
func TestPolledTLSBufferedRecords(t *testing.T) {
	s := newTLSServer(t, polledConfig)
	a, b := dialWSS(t, s), dialWSS(t, s)
	a.join()
	b.join()
	pad := strings.Repeat("x", 900) // each frame is larger than the 512-byte reader
	pub := func(id string) []byte {
		return frame(`[{"channel":"/chat","clientId":"` + b.id + `","id":"` + id + `","data":{"text":"` + id + `","pad":"` + pad + `"}}]`)
	}
	expect := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if m := a.next("/chat"); text(m) != id {
				t.Fatalf("got %v; want %s (%v)", text(m), id, ids)
			}
		}
	}

	waitIdle(t, s.h, 2)
	// Three frames in one record.
	if _, err := b.tc.Write(bytes.Join([][]byte{pub("r1"), pub("r2"), pub("r3")}, nil)); err != nil {
		t.Fatal(err)
	}
	expect("r1", "r2", "r3")

	waitIdle(t, s.h, 2)
	// Three records in one segment.
	b.sock.cork()
	for _, id := range []string{"s1", "s2", "s3"} {
		b.tc.Write(pub(id))
	}
	if err := b.sock.uncork(); err != nil {
		t.Fatal(err)
	}
	expect("s1", "s2", "s3")

	waitIdle(t, s.h, 2)
	// One frame split across two records, then a record split across
	// two segments.
	f := pub("p1")
	b.sock.cork()
	b.tc.Write(f[:7])
	b.tc.Write(f[7:])
	held := b.sock.held
	b.sock.held = nil
	b.sock.corked = false
	for _, part := range [][]byte{held[:3], held[3:40], held[40:]} {
		if _, err := b.sock.Conn.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	expect("p1")
}

// A TLS connection inside a listener's wrapper is found, polled, and
// written through its TLS layer.
func TestPolledTLSWrappedConn(t *testing.T) {
	s := serveTLS(t, polledConfig, true)
	a, b := dialWSS(t, s), dialWSS(t, s)
	a.join()
	b.join()
	waitIdle(t, s.h, 2)
	b.send("[" + b.publish("w1") + "]")
	if m := a.next("/chat"); text(m) != "w1" {
		t.Fatalf("got %v; want w1", m)
	}
}

// Many TLS sessions are all watched by the poller and all receive.
func TestPolledTLSManySessions(t *testing.T) {
	s := newTLSServer(t, polledConfig)
	const n = 100
	clients := make([]*wssClient, n)
	for i := range clients {
		clients[i] = dialWSS(t, s)
		clients[i].join()
	}
	waitIdle(t, s.h, n)
	clients[0].send("[" + clients[0].publish("all") + "]")
	for i, c := range clients {
		if m := c.next("/chat"); text(m) != "all" {
			t.Fatalf("client %d got %v", i, m)
		}
	}
}
