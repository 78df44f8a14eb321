package gateway_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/acme/acmetest"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
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
