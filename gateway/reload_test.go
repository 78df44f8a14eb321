package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// fromBackend answers calls with {"from":name} and streams ticks
// {"from":name,"n":...} on the subscribed channel.
type fromBackend struct {
	backendv1.UnimplementedBackendServer
	name string
}

func (b fromBackend) Call(context.Context, *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	return &backendv1.CallResponse{Data: []byte(`{"from":"` + b.name + `"}`)}, nil
}

func (b fromBackend) Subscribe(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
	for n := 1; ; n++ {
		if err := s.Send(&backendv1.StreamMessage{Data: []byte(fmt.Sprintf(`{"from":%q,"n":%d}`, b.name, n))}); err != nil {
			return err
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startFromBackend serves a fromBackend on ln (a new loopback listener if
// nil) and returns its address and server.
func startFromBackend(t *testing.T, name string, ln net.Listener) (string, *grpc.Server) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := grpc.NewServer()
	backendv1.RegisterBackendServer(s, fromBackend{name: name})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), s
}

// fileConfig is a configuration file's YAML: a node on loopback, control
// API on its own loopback port, no demo, long sessions, then extra.
func fileConfig(extra string) string {
	return "listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\ndemo:\n  enabled: false\nbayeux:\n  timeout: 5m\n  maxInterval: 5m\n" + extra
}

// startFromFile starts a gateway from a configuration file holding yaml,
// as gateway -config does, and returns it with the file's path.
func startFromFile(t *testing.T, yaml string) (*gateway.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)), gateway.WithConfigFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(gatewaytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.DefaultTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, path
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func bayeuxURL(srv *gateway.Server) string { return "http://" + srv.Addr().String() + "/cometd" }

// from returns the "from" of a message's data.
func from(m M) string { return m.Obj("data").Str("from") }

// Routes and backends change while a websocket session holds a connect and
// runs a stream and calls, and a long-polling session holds its connect:
// both sessions survive, the stream moves to the new backend, an added
// route serves at once, and a changed listen address is reported as
// needing a restart.
func TestReloadWhileSessionsRun(t *testing.T) {
	addrA, _ := startFromBackend(t, "a", nil)
	addrB, _ := startFromBackend(t, "b", nil)
	v1 := fileConfig(fmt.Sprintf("backends:\n  a:\n    target: %s\nroutes:\n  - channel: /service/x\n    backend: a\n  - channel: /stocks/*\n    backend: a\n", addrA))
	srv, path := startFromFile(t, v1)
	ctx := gatewaytest.Context(t)

	ws, _, err := gatewaytest.DialWebSocket(ctx, "ws"+strings.TrimPrefix(bayeuxURL(srv), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/stocks/ACME"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket"}); err != nil || !r.Successful() {
		t.Fatalf("connect: %v, %v", r, err)
	}
	if err := ws.Send(ws.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	tickFrom := func(name string) {
		t.Helper()
		if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/stocks/ACME" && from(m) == name }); err != nil {
			t.Fatalf("no tick from %s: %v", name, err)
		}
	}
	tickFrom("a")

	lp, held := heldLongPoll(t, ctx, srv, ws)

	v2 := strings.Replace(fileConfig(fmt.Sprintf("log:\n  level: debug\nbackends:\n  b:\n    target: %s\nroutes:\n  - channel: /service/x\n    backend: b\n  - channel: /service/y\n    backend: b\n  - channel: /stocks/*\n    backend: b\n", addrB)), "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:1\n", 1)
	writeFile(t, path, v2)
	res, err := srv.Reload(ctx)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, want := range []string{"backend a removed", "backend b added", "route call /service/y added", "route stream /stocks/* changed"} {
		if !slices.Contains(res.Applied, want) {
			t.Errorf("Reload applied %q; want it to include %q", res.Applied, want)
		}
	}
	if !slices.Equal(res.NeedsRestart, []string{"listen"}) {
		t.Errorf("Reload needs restart for %q; want [listen] (log.level applies only with gateway.NewLogHandler)", res.NeedsRestart)
	}

	tickFrom("b")
	r, frames, err := ws.Call(gatewaytest.DefaultTimeout, "/service/y", M{"data": M{}})
	if err != nil || !r.Successful() {
		t.Fatalf("call on the added route: %v, %v", r, err)
	}
	answered := func(m M) bool { return m.Channel() == "/service/y" && from(m) == "b" }
	if !slices.ContainsFunc(slices.Concat(frames...), answered) { // the answer may share the ack's frame
		if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, answered); err != nil {
			t.Fatalf("no answer from b on the added route: %v", err)
		}
	}
	heldAnswered(t, ctx, srv, held)
	if srv.Engine().Session(ws.ClientID) == nil || srv.Engine().Session(lp.ClientID) == nil {
		t.Error("a session was dropped by the reload")
	}
}

// A broken file is refused, by Reload and by the control API over gRPC and
// REST, with the errors; the running configuration keeps serving. A fixed
// file is then applied through the API.
func TestReloadBrokenFileKeepsRunning(t *testing.T) {
	addrA, _ := startFromBackend(t, "a", nil)
	backends := fmt.Sprintf("backends:\n  a:\n    target: %s\n", addrA)
	srv, path := startFromFile(t, fileConfig(backends+"routes:\n  - channel: /service/x\n    backend: a\n"))
	ctx := gatewaytest.Context(t)
	writeFile(t, path, fileConfig(backends+"routes:\n  - channel: /service/x\n    backend: nope\n")+"limits:\n  maxBatch: -1\n")

	_, err := srv.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "routes[0].backend") || !strings.Contains(err.Error(), "limits.maxBatch") {
		t.Fatalf("Reload of a broken file = %v; want an error naming routes[0].backend and limits.maxBatch", err)
	}
	conn, err := grpc.NewClient(srv.APIAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := gatewayv1.NewGatewayClient(conn)
	if _, err := api.Reload(ctx, &gatewayv1.ReloadRequest{}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "limits.maxBatch") {
		t.Errorf("gRPC Reload of a broken file = %v; want FailedPrecondition naming limits.maxBatch", err)
	}
	restReload := func() (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.APIAddr().String()+"/v1/reload", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := restReload(); code != http.StatusBadRequest || !strings.Contains(body, "routes[0].backend") {
		t.Errorf("POST /v1/reload of a broken file = %d %s; want 400 naming routes[0].backend", code, body)
	}

	lp := gatewaytest.NewClient(bayeuxURL(srv), nil)
	if r, _, err := lp.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	callFrom := func(channel string) string {
		t.Helper()
		for {
			_, msgs, err := lp.Call(ctx, channel, M{"data": M{}})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.Channel() == channel && m.Has("data") {
					return from(m)
				}
				if m.Channel() == channel && !m.Successful() {
					return "error " + m.Str("error")
				}
			}
			if _, msgs, err = lp.Connect(ctx, nil); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.Channel() == channel && m.Has("data") {
					return from(m)
				}
			}
		}
	}
	if got := callFrom("/service/x"); got != "a" {
		t.Fatalf("call after refused reloads answered by %q; want a", got)
	}

	writeFile(t, path, fileConfig(backends+"routes:\n  - channel: /service/x\n    backend: a\n  - channel: /service/y\n    backend: a\n"))
	res, err := api.Reload(ctx, &gatewayv1.ReloadRequest{})
	if err != nil || !slices.Equal(res.GetApplied(), []string{"route call /service/y added"}) || len(res.GetNeedsRestart()) != 0 {
		t.Fatalf("gRPC Reload of a fixed file = %v, %v; want applied [route call /service/y added]", res, err)
	}
	if code, body := restReload(); code != http.StatusOK || !strings.Contains(body, `"applied":[]`) {
		t.Errorf("POST /v1/reload of an unchanged file = %d %s; want 200 with nothing applied", code, body)
	}
	if got := callFrom("/service/y"); got != "a" {
		t.Errorf("call on the added route answered by %q; want a", got)
	}
}

// Reload without a configuration file changes nothing and says so.
func TestReloadWithoutFile(t *testing.T) {
	srv := gatewaytest.NewServer(t, nil)
	if _, err := srv.Reload(gatewaytest.Context(t)); !errors.Is(err, gateway.ErrNoConfigFile) {
		t.Errorf("Reload without a file = %v; want ErrNoConfigFile", err)
	}
}

// A hundred reloads that move a stream and a call route between two
// backends leave no goroutines and no memory behind.
func TestReloadHundredTimes(t *testing.T) {
	addrA, _ := startFromBackend(t, "a", nil)
	addrB, _ := startFromBackend(t, "b", nil)
	cfgs := [2]string{}
	for i, addr := range []string{addrA, addrB} {
		cfgs[i] = fileConfig(fmt.Sprintf("backends:\n  n%d:\n    target: %s\nroutes:\n  - channel: /service/x\n    backend: n%d\n  - channel: /stocks/*\n    backend: n%d\n", i, addr, i, i))
	}
	srv, path := startFromFile(t, cfgs[0])
	ctx := gatewaytest.Context(t)
	ws, _, err := gatewaytest.DialWebSocket(ctx, "ws"+strings.TrimPrefix(bayeuxURL(srv), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/stocks/ACME"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	// Reading ticks keeps the session's queue short; ws.Read drops frames
	// it is not asked for.
	if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/stocks/ACME" }); err != nil {
		t.Fatal(err)
	}
	// One round first, so that both backends' lazily created parts exist.
	for i := range 2 {
		writeFile(t, path, cfgs[(i+1)%2])
		if _, err := srv.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	baseG, baseHeap := settle()
	for i := range 100 {
		writeFile(t, path, cfgs[(i+1)%2])
		res, err := srv.Reload(ctx)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if len(res.Applied) == 0 {
			t.Fatalf("reload %d applied nothing", i)
		}
	}
	if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/stocks/ACME" && from(m) == "a" }); err != nil {
		t.Fatalf("no tick from the last reload's backend: %v", err)
	}
	var g int
	var heap uint64
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if g, heap = settle(); g > baseG+3 {
			return fmt.Errorf("%d goroutines after 100 reloads; %d before", g, baseG)
		}
		return nil
	})
	if heap > baseHeap+32<<20 {
		t.Errorf("heap %d bytes after 100 reloads; %d before (bound +32 MiB)", heap, baseHeap)
	}
	if n := srv.Backends().OpenStreams(); n != 1 {
		t.Errorf("OpenStreams() = %d after 100 reloads; want 1", n)
	}
}

// /readyz answers 503 while starting, while a required backend is down
// (naming it) and while draining, and 200 "ready" otherwise, on the public
// listener and on the control API's.
func TestReadyz(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, backendSrv := startFromBackend(t, "req", ln)
	cfg := config.Default()
	cfg.Listen, cfg.API.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Demo.Enabled = config.Bool(false)
	cfg.Backends = map[string]config.BackendConfig{"req": {Target: addr, Required: true, Reconnect: config.ReconnectConfig{MaxDelay: config.Duration(100 * time.Millisecond)}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	direct := func() (int, string) {
		rec := &recorder{header: http.Header{}}
		srv.Handler().ServeHTTP(rec, httptestRequest("/readyz"))
		return rec.code, rec.body.String()
	}
	if code, body := direct(); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before Start = %d %q; want 503 starting", code, body)
	}
	ctx := gatewaytest.Context(t)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	get := func(host string) (int, string) {
		resp, err := http.Get("http://" + host + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	expect := func(what string, code int, contains string) {
		t.Helper()
		for _, host := range []string{srv.Addr().String(), srv.APIAddr().String()} {
			gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
				if c, body := get(host); c != code || !strings.Contains(body, contains) {
					return fmt.Errorf("%s: GET %s/readyz = %d %q; want %d %q", what, host, c, body, code, contains)
				}
				return nil
			})
		}
	}
	expect("started", http.StatusOK, "ready")
	backendSrv.Stop()
	expect("required backend down", http.StatusServiceUnavailable, "backend req unreachable")
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	startFromBackend(t, "req", ln2)
	expect("required backend back", http.StatusOK, "ready")

	sctx, cancel := context.WithTimeout(context.Background(), gatewaytest.DefaultTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if code, body := direct(); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz after Shutdown = %d %q; want 503 draining", code, body)
	}
}

// recorder is a minimal http.ResponseWriter for calling a handler directly.
type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.code = code }

func httptestRequest(path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "http://gateway"+path, nil)
	return req
}

// heldLongPoll subscribes a new long-polling client to /news and holds its
// connect; it returns once that connect and ws's are both held, with the
// channel that receives the held connect's response.
func heldLongPoll(t *testing.T, ctx context.Context, srv *gateway.Server, ws *gatewaytest.WSClient) (*gatewaytest.Client, chan []M) {
	t.Helper()
	lp := gatewaytest.NewClient(bayeuxURL(srv), nil)
	if r, _, err := lp.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("long-polling handshake: %v, %v", r, err)
	}
	if r, _, err := lp.Subscribe(ctx, "/news"); err != nil || !r.Successful() {
		t.Fatalf("long-polling subscribe: %v, %v", r, err)
	}
	if r, _, err := lp.Connect(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("long-polling connect: %v, %v", r, err)
	}
	held := make(chan []M, 1)
	go func() {
		_, msgs, _ := lp.Connect(ctx, nil)
		held <- msgs
	}()
	gatewaytest.Eventually(t, gatewaytest.DefaultTimeout, func() error {
		if s := srv.Engine().Session(lp.ClientID); s == nil || !s.Held() {
			return errors.New("long-polling connect not held yet")
		}
		if s := srv.Engine().Session(ws.ClientID); s == nil || !s.Held() {
			return errors.New("websocket connect not held yet")
		}
		return nil
	})
	return lp, held
}

// heldAnswered publishes on /news and checks that the long poll held by
// heldLongPoll returns it, successfully, across the reload.
func heldAnswered(t *testing.T, ctx context.Context, srv *gateway.Server, held chan []M) {
	t.Helper()
	if _, err := srv.Engine().Publish("/news", []byte(`{"after":"reload"}`), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case msgs := <-held:
		ok := false
		for _, m := range msgs {
			if m.Channel() == "/meta/connect" && !m.Successful() {
				t.Errorf("held long-polling connect answered %v across the reload", m)
			}
			ok = ok || m.Channel() == "/news"
		}
		if !ok {
			t.Errorf("held long-polling connect returned %v; want the message published after the reload", msgs)
		}
	case <-ctx.Done():
		t.Fatal("held long-polling connect never returned")
	}
}
