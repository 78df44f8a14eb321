package gateway_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/acme"
	"github.com/cometgate/cometgate/gateway/acme/acmetest"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tls.mode auto against Pebble in process: the gateway obtains a
// certificate for a name (resolved to 127.0.0.1 by Pebble's DNS) through
// HTTP-01 answered on its plain listener, then serves a Bayeux session
// over wss with it, verified with Pebble's root.
func TestTLSAutoWithPebble(t *testing.T) {
	httpPort := freeLoopbackPort(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: httpPort, TLSPort: 1})
	dir := t.TempDir()
	roots := filepath.Join(dir, "pebble-api.pem")
	if err := os.WriteFile(roots, p.TLSCAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("chat-%d.cometgate.test", time.Now().UnixNano())
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.TLS.Mode = "auto"
		c.TLS.HTTPListen = fmt.Sprintf("127.0.0.1:%d", httpPort)
		c.TLS.ACME = config.ACMEConfig{
			CA: p.Dir, Email: "ops@cometgate.test", Agree: true, Domains: []string{name},
			Storage: filepath.Join(dir, "certs"), TrustedRoots: roots,
			Challenges: []string{"http-01"}, AltHTTPPort: httpPort,
		}
	})
	addr := srv.Addr().String()
	tc := &tls.Config{ServerName: name, RootCAs: p.Roots()}
	gatewaytest.Eventually(t, 20*time.Second, func() error {
		c, err := tls.Dial("tcp", addr, tc)
		if err != nil {
			_, why := srv.Ready()
			return fmt.Errorf("%w; not ready: %q", err, why)
		}
		return c.Close()
	})
	ctx := gatewaytest.Context(t)
	url := "wss://" + addr + "/cometd"
	ws, _, err := gatewaytest.DialWebSocketTLS(ctx, url, nil, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake over wss: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/news"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	if _, err := srv.Engine().Publish("/news", []byte(`{"over":"acme"}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/news" }); err != nil {
		t.Fatalf("no message over wss: %v", err)
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("handshake trusting only the system roots = %v; want a certificate error (Pebble issued it)", err)
	}
}

// On-demand TLS with the allowlist managed through the control API: a
// name the API allowed gets a certificate from Pebble during its first
// handshake; one it never allowed, or disallowed, gets none.
func TestTLSOnDemandAllowlistThroughAPI(t *testing.T) {
	httpPort := freeLoopbackPort(t)
	tlsPort := freeLoopbackPort(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	dir := t.TempDir()
	roots := filepath.Join(dir, "pebble-api.pem")
	if err := os.WriteFile(roots, p.TLSCAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d.cometgate.test", time.Now().UnixNano())
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.Listen = fmt.Sprintf("127.0.0.1:%d", tlsPort)
		c.TLS.Mode = "auto"
		c.TLS.ACME = config.ACMEConfig{
			CA: p.Dir, Email: "ops@cometgate.test", Agree: true,
			Storage: filepath.Join(dir, "certs"), TrustedRoots: roots,
			Challenges: []string{"tls-alpn-01"}, AltTLSALPNPort: tlsPort,
			OnDemand: config.OnDemandConfig{Enabled: true, Allow: []string{"seed-" + suffix}},
		}
	})
	ctx := gatewaytest.Context(t)
	conn, err := grpc.NewClient(srv.APIAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := gatewayv1.NewGatewayClient(conn)
	names := func(r *gatewayv1.ListTLSNamesResponse, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(r.GetNames(), ",")
	}
	if got := names(api.ListTLSNames(ctx, &gatewayv1.ListTLSNamesRequest{})); got != "seed-"+suffix {
		t.Errorf("allowlist %q; want the configured seed", got)
	}
	if got := names(api.AllowTLSName(ctx, &gatewayv1.AllowTLSNameRequest{Name: "*.chat-" + suffix})); !strings.Contains(got, "*.chat-"+suffix) {
		t.Errorf("allowlist after AllowTLSName: %q", got)
	}
	if _, err := api.AllowTLSName(ctx, &gatewayv1.AllowTLSNameRequest{Name: "*.*.bad"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("AllowTLSName(*.*.bad) = %v; want InvalidArgument", err)
	}
	handshake := func(name string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", srv.Addr().String(), &tls.Config{ServerName: name, RootCAs: p.Roots()})
		if err != nil {
			return err
		}
		return c.Close()
	}
	if err := handshake("room1.chat-" + suffix); err != nil {
		t.Fatalf("handshake for an allowed name: %v", err)
	}
	orders := p.Orders.Load()
	if err := handshake("elsewhere-" + suffix); err == nil {
		t.Error("handshake for a name never allowed succeeded")
	}
	names(api.DisallowTLSName(ctx, &gatewayv1.DisallowTLSNameRequest{Name: "*.chat-" + suffix}))
	if err := handshake("room2.chat-" + suffix); err == nil {
		t.Error("handshake for a disallowed name succeeded")
	}
	if got := p.Orders.Load(); got != orders {
		t.Errorf("%d ACME orders for refused names; want none", got-orders)
	}
	mfs, err := srv.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			got[mf.GetName()+"{"+labels(m)+"}"] = m.GetCounter().GetValue()
		}
	}
	if got["cometgate_tls_on_demand_refused_total{}"] != 2 || got["cometgate_tls_acme_certificates_total{event=obtained}"] != 1 {
		t.Errorf("metrics: refused %v, obtained %v; want 2 and 1", got["cometgate_tls_on_demand_refused_total{}"], got["cometgate_tls_acme_certificates_total{event=obtained}"])
	}
}

// A node without on-demand TLS answers the allowlist methods with
// FAILED_PRECONDITION, over gRPC and REST.
func TestTLSNamesWithoutOnDemand(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) { c.Demo.Enabled = config.Bool(false) })
	conn, err := grpc.NewClient(srv.APIAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := gatewaytest.Context(t)
	if _, err := gatewayv1.NewGatewayClient(conn).AllowTLSName(ctx, &gatewayv1.AllowTLSNameRequest{Name: "a.example"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("AllowTLSName = %v; want FailedPrecondition", err)
	}
	resp, err := http.Get("http://" + srv.APIAddr().String() + "/v1/tls/names")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /v1/tls/names = %d; want 400 (FAILED_PRECONDITION)", resp.StatusCode)
	}
}

// A certificate that Pebble issues for 20 seconds is renewed by the
// gateway while a websocket session stays connected over wss and keeps
// receiving; new connections get the new certificate.
func TestTLSAutoRenewalKeepsWebSocket(t *testing.T) {
	tlsPort := freeLoopbackPort(t)
	p := acmetest.StartPebble(t, acmetest.Options{HTTPPort: 1, TLSPort: tlsPort, Validity: 20})
	dir := t.TempDir()
	roots := filepath.Join(dir, "pebble-api.pem")
	if err := os.WriteFile(roots, p.TLSCAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("renew-%d.cometgate.test", time.Now().UnixNano())
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
		c.Listen = fmt.Sprintf("127.0.0.1:%d", tlsPort)
		c.TLS.Mode = "auto"
		c.TLS.ACME = config.ACMEConfig{
			CA: p.Dir, Email: "ops@cometgate.test", Agree: true, Domains: []string{name},
			Storage: filepath.Join(dir, "certs"), TrustedRoots: roots,
			Challenges: []string{"tls-alpn-01"}, AltTLSALPNPort: tlsPort,
		}
	}, gateway.WithACMETuning(func(a *acme.Config) {
		a.RenewalWindowRatio, a.RenewCheckInterval, a.DisableARI = 0.5, time.Second, true
	}))
	addr := srv.Addr().String()
	tc := &tls.Config{ServerName: name, RootCAs: p.Roots()}
	serial := func() (string, error) {
		c, err := tls.Dial("tcp", addr, tc)
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	var first string
	gatewaytest.Eventually(t, 20*time.Second, func() (err error) {
		first, err = serial()
		return err
	})
	ctx := gatewaytest.Context(t)
	ws, _, err := gatewaytest.DialWebSocketTLS(ctx, "wss://"+addr+"/cometd", nil, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/news"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	n := 0
	receive := func() {
		t.Helper()
		n++
		want := fmt.Sprintf("%d", n)
		if _, err := srv.Engine().Publish("/news", []byte(`{"n":`+want+`}`), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool {
			return m.Channel() == "/news" && fmt.Sprint(m.Obj("data")["n"]) == want
		}); err != nil {
			t.Fatalf("message %d not received: %v", n, err)
		}
	}
	receive()
	gatewaytest.Eventually(t, 40*time.Second, func() error {
		got, err := serial()
		if err != nil {
			return err
		}
		if got == first {
			return fmt.Errorf("still serving serial %s", first)
		}
		return nil
	})
	receive() // the session opened under the first certificate goes on
	if srv.Engine().Session(ws.ClientID) == nil {
		t.Error("session dropped across the renewal")
	}
}
