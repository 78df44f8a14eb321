package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
)

// logCapture is a slog.Handler that keeps every record, for assertions.
type logCapture struct {
	mu      sync.Mutex // guards records
	records []slog.Record
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.records = append(c.records, r.Clone())
	c.mu.Unlock()
	return nil
}

func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// find returns the records with message msg, their attributes as strings.
func (c *logCapture) find(level slog.Level, msg string) []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]string
	for _, r := range c.records {
		if r.Message != msg || r.Level != level {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// The startup summary names the transports, backends and routes.
func TestStartupSummaryLogged(t *testing.T) {
	logs := &logCapture{}
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.Backends = map[string]config.BackendConfig{
			"echo":   {Target: "127.0.0.1:1"},
			"legacy": {URL: "http://127.0.0.1:1/call"},
		}
		c.Routes = []config.RouteConfig{{Channel: "/service/rpc", Backend: "echo"}, {Channel: "/service/old", Backend: "legacy"}}
		c.SetDefaults()
	}, gateway.WithLogger(slog.New(logs)))
	serving := logs.find(slog.LevelInfo, "cometgate serving")
	if len(serving) != 1 || serving[0]["transports"] != "websocket,long-polling,callback-polling" || serving[0]["backends"] != "2" || serving[0]["routes"] != "2" || serving[0]["metrics"] != "API listener" {
		t.Errorf("summary = %v; want one line with the transports, 2 backends, 2 routes, metrics on the API listener", serving)
	}
	backends := logs.find(slog.LevelInfo, "backend")
	if len(backends) != 2 || backends[0]["name"] != "echo" || backends[0]["target"] != "127.0.0.1:1" || backends[1]["url"] != "http://127.0.0.1:1/call" {
		t.Errorf("backend lines = %v", backends)
	}
	routes := logs.find(slog.LevelInfo, "route")
	if len(routes) != 2 || routes[0]["channel"] != "/service/rpc" || routes[0]["backend"] != "echo" || routes[0]["type"] != "call" {
		t.Errorf("route lines = %v", routes)
	}
	if n := len(logs.find(slog.LevelInfo, "control API listening")); n != 1 {
		t.Errorf("%d lines about the API listener; want 1", n)
	}
	// Shutdown logs each of its steps.
	if err := srv.Shutdown(gatewaytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"cometgate shutting down", "shutdown: engine closed, held connects answered", "shutdown: websocket connections closed", "shutdown: listeners stopped", "shutdown: backends closed", "cometgate stopped"} {
		if n := len(logs.find(slog.LevelInfo, step)); n != 1 {
			t.Errorf("%d lines %q; want 1", n, step)
		}
	}
}

// A backend that goes away and comes back is logged once each way, however
// many calls fail or succeed meanwhile.
func TestBackendAvailabilityLoggedOncePerChange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	logs := &logCapture{}
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.Backends = map[string]config.BackendConfig{"echo": {
			Target:    addr,
			Reconnect: config.ReconnectConfig{BaseDelay: config.Duration(10 * time.Millisecond), MaxDelay: config.Duration(50 * time.Millisecond)},
		}}
		c.Routes = []config.RouteConfig{{Channel: "/service/rpc", Backend: "echo"}}
		c.SetDefaults()
	}, gateway.WithLogger(slog.New(logs)))
	ctx := gatewaytest.Context(t)
	ws := healthySubscriber(t, ctx, srv.WSURL, "/x")
	call := func(i int) bool {
		t.Helper()
		if err := ws.Send(ws.NewMessage("/service/rpc", M{"data": M{"i": i}})); err != nil {
			t.Fatal(err)
		}
		// The call's answer carries data (failureData when it failed);
		// the publish acknowledgement has none.
		frames, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/service/rpc" && m.Has("data") })
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		last := frames[len(frames)-1]
		for _, m := range last {
			if m.Channel() == "/service/rpc" && m.Has("data") {
				return m.Successful()
			}
		}
		t.Fatalf("call %d: no answer in %v", i, last)
		return false
	}
	for i := range 3 {
		if call(i) {
			t.Fatalf("call %d succeeded with no backend", i)
		}
	}
	if got := logs.find(slog.LevelWarn, "backend unavailable"); len(got) != 1 || got[0]["backend"] != "echo" {
		t.Fatalf("unavailable lines = %v; want one for echo", got)
	}
	// The backend comes up on its address.
	bl, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	gs := grpc.NewServer()
	backendv1.RegisterBackendServer(gs, echoBackend{})
	go gs.Serve(bl)
	t.Cleanup(gs.Stop)
	i := 3
	gatewaytest.Eventually(t, 10*time.Second, func() error {
		i++
		if !call(i) {
			return fmt.Errorf("call %d still fails", i)
		}
		return nil
	})
	for range 3 {
		i++
		if !call(i) {
			t.Fatalf("call %d failed after the backend came back", i)
		}
	}
	if got := logs.find(slog.LevelInfo, "backend available again"); len(got) != 1 || got[0]["backend"] != "echo" {
		t.Errorf("available lines = %v; want one for echo", got)
	}
	if got := logs.find(slog.LevelWarn, "backend unavailable"); len(got) != 1 {
		t.Errorf("unavailable lines = %v; want still one", got)
	}
}

// Requests refused for their Origin are logged at info level with the
// origin, at most one line a second with the count since the last one.
func TestRefusedOriginsLoggedRateLimited(t *testing.T) {
	logs := &logCapture{}
	srv := gatewaytest.NewServer(t, func(c *config.Config) { c.Demo.Enabled = config.Bool(false) }, gateway.WithLogger(slog.New(logs)))
	ctx := gatewaytest.Context(t)
	start := time.Now()
	const n = 5
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`[]`))
		req.Header.Set("Origin", "http://foreign.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: %v, %v; want 403", resp, err)
		}
		resp.Body.Close()
	}
	if _, resp, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, http.Header{"Origin": {"http://foreign.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("websocket from a foreign origin: %v, %v; want 403", resp, err)
	}
	elapsed := time.Since(start)
	polls := logs.find(slog.LevelInfo, "cross-origin request refused")
	if len(polls) == 0 || polls[0]["origin"] != "http://foreign.example" || polls[0]["refusedSinceLastLog"] != "1" {
		t.Fatalf("info lines = %v; want the first refusal with its origin", polls)
	}
	lines := len(polls) + len(logs.find(slog.LevelInfo, "websocket origin refused"))
	if limit := 1 + int(elapsed/time.Second); lines > limit {
		t.Errorf("%d info lines in %v; want at most %d (one a second)", lines, elapsed, limit)
	}
	debug := len(logs.find(slog.LevelDebug, "cross-origin request refused")) + len(logs.find(slog.LevelDebug, "websocket origin refused"))
	if lines+debug != n+1 {
		t.Errorf("%d info and %d debug lines; want %d refusals logged", lines, debug, n+1)
	}
}

// Durations are strings in JSON logs as in text logs.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: gateway.ReplaceLogAttr}))
	log.Info("x", "took", 3200*time.Millisecond, slog.Group("g", "in", 50*time.Millisecond))
	var got struct {
		Took string
		G    struct{ In string }
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, buf.Bytes())
	}
	if got.Took != "3.2s" || got.G.In != "50ms" {
		t.Errorf("JSON durations = %q, %q; want \"3.2s\", \"50ms\" (%s)", got.Took, got.G.In, buf.Bytes())
	}
}

// At debug level, each session created and removed is logged with its
// client id, transport and remote address.
func TestSessionLifecycleLoggedAtDebug(t *testing.T) {
	logs := &logCapture{}
	srv := gatewaytest.NewServer(t, func(c *config.Config) { c.Demo.Enabled = config.Bool(false) }, gateway.WithLogger(slog.New(logs)))
	ctx := gatewaytest.Context(t)
	c := srv.Client()
	if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := c.Disconnect(ctx); err != nil || !r.Successful() {
		t.Fatalf("disconnect: %v, %v", r, err)
	}
	for _, msg := range []string{"session created", "session removed"} {
		got := logs.find(slog.LevelDebug, msg)
		if len(got) != 1 || got[0]["session"] != c.ClientID || got[0]["transport"] != "long-polling" || !strings.HasPrefix(got[0]["remote"], "127.0.0.1:") {
			t.Errorf("%q lines = %v; want one with client id %s, long-polling and the remote address", msg, got, c.ClientID)
		}
	}
	if got := logs.find(slog.LevelDebug, "session removed"); len(got) == 1 && got[0]["reason"] != "disconnect" {
		t.Errorf("removal reason = %q; want disconnect", got[0]["reason"])
	}
}
