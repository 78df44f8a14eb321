package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/gorilla/websocket"
)

// TestRemoteCallAnswerOnce makes many concurrent remote calls over
// websocket, to fast backends (answers share the ack's frame) and to one
// slower than answerWait (100ms: acks go alone first), and checks each
// call gets exactly one acknowledgement and exactly one answer.
func TestRemoteCallAnswerOnce(t *testing.T) {
	for _, tt := range []struct {
		delay time.Duration
		calls int
	}{{0, 100}, {2 * time.Millisecond, 100}, {150 * time.Millisecond, 12}} {
		t.Run(fmt.Sprint("backend delay ", tt.delay), func(t *testing.T) {
			t.Parallel()
			srv := startRPCGateway(t, startEchoBackend(t, tt.delay), 0)
			url := "ws://" + srv.Addr().String() + "/cometd"
			const callers = 10
			calls := tt.calls
			var wg sync.WaitGroup
			for range callers {
				c, err := dialCaller(url)
				if err != nil {
					t.Fatal(err)
				}
				defer c.ws.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.callAll(calls); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// callAll makes n calls, with several in flight, and reads until every one
// is acknowledged and answered, then a little longer: any message seen
// twice is an error.
func (c *wsCaller) callAll(n int) error {
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	const inFlight = 4
	acks, answers := map[string]int{}, map[string]int{}
	sent := 0
	send := func() error {
		sent++
		id := strconv.Itoa(sent)
		return c.ws.WriteMessage(websocket.TextMessage, []byte(`[{"id":"`+id+`","channel":"/service/rpc","clientId":"`+c.id+`","data":{"n":`+id+`}}]`))
	}
	for range inFlight {
		if err := send(); err != nil {
			return err
		}
	}
	for len(answers) < n || len(acks) < n {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("after %d answers and %d acks: %w", len(answers), len(acks), err)
		}
		var msgs []struct {
			Channel string
			ID      string
			Data    json.RawMessage
		}
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Channel != "/service/rpc" {
				continue
			}
			if m.Data == nil {
				acks[m.ID]++
				if acks[m.ID] > 1 {
					return fmt.Errorf("call %s acknowledged %d times", m.ID, acks[m.ID])
				}
				continue
			}
			answers[m.ID]++
			if answers[m.ID] > 1 {
				return fmt.Errorf("call %s answered %d times (frame %s)", m.ID, answers[m.ID], raw)
			}
			if want := `{"n":` + m.ID + `}`; string(m.Data) != want {
				return fmt.Errorf("call %s answered %s; want %s", m.ID, m.Data, want)
			}
			if sent < n {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	// Nothing more may come (the held connect stays held).
	c.ws.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, raw, err := c.ws.ReadMessage(); err == nil {
		return fmt.Errorf("unexpected frame after all answers: %s", raw)
	}
	return nil
}

// TestCallRouteOnDemoChannel: with the demo on, a call route that matches
// one of its service channels is refused, since both would answer.
func TestCallRouteOnDemoChannel(t *testing.T) {
	for _, tt := range []struct {
		name, channel string
		demo, wantErr bool
	}{
		{name: "exact", channel: "/service/echo", demo: true, wantErr: true},
		{name: "wildcard", channel: "/service/**", demo: true, wantErr: true},
		{name: "other channel", channel: "/service/rooms/**", demo: true},
		{name: "demo off", channel: "/service/**"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen = "127.0.0.1:0"
			cfg.Demo.Enabled = config.Bool(tt.demo)
			cfg.API.Listen = "off"
			cfg.Backends = map[string]config.BackendConfig{"b": {Target: "127.0.0.1:1"}}
			cfg.Routes = []config.RouteConfig{{Channel: tt.channel, Backend: "b"}}
			cfg.SetDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
			if err == nil {
				srv.Shutdown(context.Background())
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("New with route %s, demo %v: err = %v; want error %v", tt.channel, tt.demo, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.channel) {
				t.Errorf("error %q does not name the route %s", err, tt.channel)
			}
		})
	}
}
