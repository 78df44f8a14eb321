package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rpcConcurrency is the number of callers, each with one call in flight.
const rpcConcurrency = 50

// echoBackend answers every call with its data, after delay.
type echoBackend struct {
	backendv1.UnimplementedBackendServer
	delay time.Duration
}

func (b echoBackend) Call(ctx context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &backendv1.CallResponse{Data: r.GetData()}, nil
}

func startEchoBackend(tb testing.TB, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer()
	backendv1.RegisterBackendServer(s, echoBackend{delay: delay})
	go s.Serve(ln)
	tb.Cleanup(s.Stop)
	return ln.Addr().String()
}

// startRPCGateway starts a gateway whose /service/rpc goes to the backend
// at addr; flushDelay, if not 0, replaces the websocket flush delay.
func startRPCGateway(tb testing.TB, addr string, flushDelay time.Duration) *gateway.Server {
	cfg := config.Default()
	if flushDelay != 0 {
		cfg.Transports.WebSocket.FlushDelay = config.Duration(flushDelay)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Demo.Enabled = config.Bool(false)
	cfg.API.Listen = "off"
	cfg.Log.Level = "error"
	cfg.Backends = map[string]config.BackendConfig{"echo": {Target: addr}}
	cfg.Routes = []config.RouteConfig{{Channel: "/service/rpc", Backend: "echo"}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(ctx) })
	return srv
}

// runCallers runs n calls split over rpcConcurrency callers and reports
// calls/s and the p50/p99 round trip in microseconds.
func runCallers(b *testing.B, call func(worker, seq int) error) {
	per := max(b.N/rpcConcurrency, 1)
	lat := make([][]time.Duration, rpcConcurrency)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range rpcConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, per)
			for i := range per {
				t0 := time.Now()
				if err := call(w, i); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRemoteCall compares a remote call made by websocket Bayeux
// clients through the gateway to a gRPC backend with the same gRPC call
// made directly, both at concurrency 50.
func BenchmarkRemoteCall(b *testing.B) {
	addr := startEchoBackend(b, 0)
	payload := json.RawMessage(`{"user":"alice","query":"status","n":42}`)

	b.Run("direct", func(b *testing.B) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		c := backendv1.NewBackendClient(conn)
		runCallers(b, func(w, i int) error {
			_, err := c.Call(context.Background(), &backendv1.CallRequest{Channel: "/service/rpc", Data: payload, MessageId: strconv.Itoa(i)})
			return err
		})
	})

	b.Run("gateway", func(b *testing.B) {
		srv := startRPCGateway(b, addr, 0)
		var err error
		url := "ws://" + srv.Addr().String() + "/cometd"
		clients := make([]*wsCaller, rpcConcurrency)
		for i := range clients {
			if clients[i], err = dialCaller(url); err != nil {
				b.Fatal(err)
			}
			defer clients[i].ws.Close()
		}
		runCallers(b, func(w, i int) error { return clients[w].call(i, payload) })
	})
}

// wsCaller is a minimal Bayeux websocket client making remote calls.
type wsCaller struct {
	ws *websocket.Conn
	id string
}

func dialCaller(url string) (*wsCaller, error) {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	c := &wsCaller{ws: ws}
	var hs []struct{ ClientID string }
	if err := c.roundTrip(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`, &hs); err != nil {
		return nil, err
	}
	c.id = hs[0].ClientID
	// The first connect returns at once; the second stays held, as in a
	// real client, while calls go on.
	var r []json.RawMessage
	if err := c.roundTrip(`[{"channel":"/meta/connect","clientId":"`+c.id+`","connectionType":"websocket","advice":{"timeout":0}}]`, &r); err != nil {
		return nil, err
	}
	return c, ws.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/connect","clientId":"`+c.id+`","connectionType":"websocket"}]`))
}

func (c *wsCaller) roundTrip(frame string, v any) error {
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return err
	}
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// call publishes to /service/rpc and waits for the reply carrying data
// with the same id (the publish ack has none).
func (c *wsCaller) call(seq int, data json.RawMessage) error {
	id := strconv.Itoa(seq + 1)
	frame := `[{"id":"` + id + `","channel":"/service/rpc","clientId":"` + c.id + `","data":` + string(data) + `}]`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return err
	}
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		var msgs []struct {
			ID         string
			Successful *bool
			Data       json.RawMessage
			Error      string
		}
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return err
		}
		for _, m := range msgs {
			if m.ID == id && m.Data != nil {
				if m.Successful == nil || !*m.Successful {
					return fmt.Errorf("call failed: %s", m.Error)
				}
				return nil
			}
		}
	}
}
