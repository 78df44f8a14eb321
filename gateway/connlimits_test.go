package gateway_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/gorilla/websocket"
)

// A connection that upgrades and then says nothing is closed after the
// handshake timeout; one whose session is gone is closed too (issue 8.4).
func TestSilentWebSocketClosed(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
		c.Transports.WebSocket.HandshakeTimeout = config.Duration(200 * time.Millisecond)
	})
	silent, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	code, err := silent.WaitClose(gatewaytest.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if code != websocket.ClosePolicyViolation {
		t.Errorf("silent connection closed with %d; want %d", code, websocket.ClosePolicyViolation)
	}
	if n := srv.Transport().HandshakeTimeouts(); n != 1 {
		t.Errorf("HandshakeTimeouts() = %d; want 1", n)
	}

	// A connection that handshook is past the clock; when its session is
	// ended from the server side, the connection goes too.
	w := wsSession(t, srv, nil)
	srv.Engine().Session(w.ClientID).Disconnect()
	if code, err := w.WaitClose(gatewaytest.DefaultTimeout); err != nil || code != websocket.CloseNormalClosure {
		t.Errorf("connection of an ended session: close %d, %v; want %d", code, err, websocket.CloseNormalClosure)
	}
	if n := srv.Transport().HandshakeTimeouts(); n != 1 {
		t.Errorf("HandshakeTimeouts() = %d after a handshaken connection; want still 1", n)
	}
}

// One address cannot hold more than limits.maxConnectionsPerAddress
// connections: the next is answered 503 and counted, and a place freed is
// available again.
func TestConnectionsPerAddressLimit(t *testing.T) {
	const limit = 3
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.Limits.MaxConnectionsPerAddress = limit
	})
	ctx := gatewaytest.Context(t)
	var open []*gatewaytest.WSClient
	for range limit {
		w, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		open = append(open, w)
	}
	_, resp, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
	if err == nil {
		t.Fatal("connection over the limit was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over the limit: %v, %v; want a 503 answer", resp, err)
	}
	if n := srv.RefusedConnections(); n != 1 {
		t.Errorf("RefusedConnections() = %d; want 1", n)
	}
	open[0].Close()
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		w, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
		if err != nil {
			return errors.New("no place freed yet: " + err.Error())
		}
		w.Close()
		return nil
	})
}
