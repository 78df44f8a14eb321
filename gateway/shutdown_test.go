package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/gorilla/websocket"
)

// After disconnect with a connect held, the held connect's reply comes
// first, in the disconnect reply's frame, and the gateway closes the
// connection with 1000: the CometD client closes its socket only if no
// connect is outstanding when the disconnect reply arrives (issue 8.8).
func TestDisconnectWithHeldConnect(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	w := wsSession(t, srv, nil) // a connect is held
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if s := srv.Engine().Session(w.ClientID); s == nil || !s.Held() {
			return errors.New("connect not held yet")
		}
		return nil
	})
	d := w.NewMessage("/meta/disconnect", nil)
	if err := w.Send(d); err != nil {
		t.Fatal(err)
	}
	frames, err := w.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/meta/disconnect" })
	if err != nil {
		t.Fatal(err)
	}
	last := frames[len(frames)-1]
	if len(last) != 2 || last[0].Channel() != "/meta/connect" || last[1].Channel() != "/meta/disconnect" || !last[1].Successful() {
		t.Fatalf("frame with the disconnect reply = %v; want the held connect's reply, then the disconnect's", last)
	}
	if r := last[0].Obj("advice").Str("reconnect"); r != "none" {
		t.Errorf("held connect's reply advice reconnect = %q; want none", r)
	}
	code, err := w.WaitClose(gatewaytest.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if code != websocket.CloseNormalClosure {
		t.Errorf("close code %d; want %d", code, websocket.CloseNormalClosure)
	}
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if n := srv.Transport().Len(); n != 0 {
			return errors.New("websocket connections still open")
		}
		return nil
	})
}

// At shutdown, what was published and acknowledged before goes out to a
// deliver-only (ack) session even though no connect is held to carry it,
// and later publishes are refused, never acknowledged and dropped.
func TestShutdownFlushesQueuedAndRefusesPublishes(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	ctx := gatewaytest.Context(t)
	w, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if r, _, err := w.Handshake(gatewaytest.DefaultTimeout, M{"ext": M{"ack": true}}); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/shut"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	// One connect, answered by the first message; the client does not
	// connect again, so the next messages stay queued (deliver-only).
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket", "ext": M{"ack": -1}}); err != nil || !r.Successful() {
		t.Fatalf("first connect: %v, %v", r, err)
	}
	if err := w.Send(w.NewMessage("/meta/connect", M{"connectionType": "websocket", "ext": M{"ack": 0}})); err != nil {
		t.Fatal(err)
	}
	e := srv.Engine()
	publish := func(i int) {
		t.Helper()
		if _, err := e.Publish("/shut", json.RawMessage(`{"i":`+string(rune('0'+i))+`}`), nil); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if s := e.Session(w.ClientID); s == nil || !s.Held() {
			return errors.New("connect not held yet")
		}
		return nil
	})
	publish(1)
	if _, err := w.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/meta/connect" }); err != nil {
		t.Fatal(err)
	}
	publish(2)
	publish(3)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var got []float64
	for {
		msgs, err := w.Read(gatewaytest.DefaultTimeout)
		if err != nil {
			break
		}
		for _, m := range msgs {
			if m.Channel() == "/shut" {
				got = append(got, m.Obj("data")["i"].(float64))
			}
		}
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("delivered at shutdown: %v; want [2 3]", got)
	}
	if _, err := e.Publish("/shut", json.RawMessage(`4`), nil); !errors.Is(err, engine.ErrClosing) {
		t.Errorf("publish after shutdown: %v; want ErrClosing", err)
	}
}
