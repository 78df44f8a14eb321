package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/transport"
	"github.com/gorilla/websocket"
)

// benchWebSocketFanout publishes one message per iteration to n websocket
// subscribers over loopback and waits until every one has read it. The
// message is encoded once; ns/delivery and allocs/op (per message) show
// what each subscriber costs on the write path.
func benchWebSocketFanout(b *testing.B, n int, poller bool) {
	e := engine.New(engine.Config{Timeout: time.Minute, MaxQueue: 1 << 16})
	e.Start(context.Background())
	defer e.Close(context.Background())
	srv := httptest.NewServer(transport.NewHandler(e, transport.Config{WebSocket: transport.WebSocketConfig{Poller: poller}}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var received atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		c.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/handshake"}]`))
		_, data, _ := c.ReadMessage()
		var hs []struct{ ClientID string }
		json.Unmarshal(data, &hs)
		id := hs[0].ClientID
		c.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/connect","clientId":"`+id+`","advice":{"timeout":0}}]`))
		c.ReadMessage()
		c.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/bench"},{"channel":"/meta/connect","clientId":"`+id+`"}]`))
		c.ReadMessage()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				received.Add(int64(strings.Count(string(data), `"/bench"`)))
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	data := json.RawMessage(`{"user":"alice","chat":"hello, world","ts":1732512345678}`)
	b.ReportAllocs()
	b.ResetTimer()
	want := int64(0)
	for b.Loop() {
		e.Publish("/bench", data, nil)
		want += int64(n)
		for received.Load() < want {
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

func BenchmarkWebSocketFanout(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, poller := range []bool{true, false} {
			b.Run(fmt.Sprintf("subs=%d/poller=%v", n, poller), func(b *testing.B) { benchWebSocketFanout(b, n, poller) })
		}
	}
}
