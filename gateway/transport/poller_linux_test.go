package transport

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/gorilla/websocket"
)

// On Linux, websocket connections are watched by the poller, not by a
// reader goroutine each, and frames on them are read and answered.
func TestPollerWatchesConnections(t *testing.T) {
	e := engine.New(engine.Config{Timeout: time.Second})
	e.Start(context.Background())
	h := NewHandler(e, Config{WebSocket: WebSocketConfig{Poller: true}})
	if h.poller == nil {
		t.Fatal("no poller on Linux")
	}
	srv := httptest.NewServer(h)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
		srv.Close()
		h.poller.close()
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := range 3 { // each frame after the first comes through a re-armed registration
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(data), `"successful":true`) {
			t.Fatalf("handshake %d: %s %v", i, data, err)
		}
	}
	h.poller.mu.Lock()
	watched := len(h.poller.conns)
	h.poller.mu.Unlock()
	if watched != 1 {
		t.Errorf("poller watches %d connections; want 1", watched)
	}
}
