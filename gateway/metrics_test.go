package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// denyFlagged denies the handshakes whose ext carries "deny".
type denyFlagged struct{ engine.DefaultPolicy }

func (denyFlagged) CanHandshake(_ context.Context, _ *engine.Session, m *bayeux.Message) error {
	if bytes.Contains(m.Ext, []byte(`"deny"`)) {
		return engine.ErrDenied
	}
	return nil
}

const metricsToken = "metrics-test-token-0123456789"

// scrape fetches url with the API token and parses the text exposition
// into series ("name{label="value",...}") and their values.
func scrape(ctx context.Context, url, token string) (map[string]float64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var text strings.Builder
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		text.WriteString(line + "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, "", fmt.Errorf("line %q: %w", line, err)
		}
		series[line[:i]] = v
	}
	return series, text.String(), sc.Err()
}

// expect compares series with want; it reports every difference.
func expect(series map[string]float64, want map[string]float64) error {
	var diffs []string
	for k, v := range want {
		if got, ok := series[k]; !ok || got != v {
			diffs = append(diffs, fmt.Sprintf("%s = %v (present %v); want %v", k, got, ok, v))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		return fmt.Errorf("%d series differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	return nil
}

// After a known sequence of client actions, /metrics on the control API's
// listener reports exactly what happened, with no client id or channel
// name in any label, and only to a request with the API's token.
func TestMetricsAfterKnownActions(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
		c.API.Tokens = []string{metricsToken}
		c.Limits.MaxSubscriptionsPerSession = 1
		c.Bayeux.MaxQueue = 40
		c.Transports.WebSocket.WriteTimeout = config.Duration(time.Minute)
		c.Backends = map[string]config.BackendConfig{"echo": {Target: startEchoBackend(t, 0)}}
		c.Routes = []config.RouteConfig{{Channel: "/service/rpc", Backend: "echo"}}
		c.SetDefaults()
	}, gateway.WithEngineOptions(engine.WithPolicy(denyFlagged{})))
	ctx := gatewaytest.Context(t)
	metricsURL := "http://" + srv.APIAddr().String() + "/metrics"

	// Without the token: refused.
	if _, _, err := scrape(ctx, metricsURL, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("scrape without token: %v; want 401", err)
	}
	// Not on the public listener (metrics.public: false).
	if _, _, err := scrape(ctx, "http://"+srv.Addr().String()+"/metrics", metricsToken); err == nil {
		t.Fatal("/metrics served on the public listener with metrics.public: false")
	}

	// A websocket client: handshake, subscribe, connect (held), a second
	// subscription over the limit, and a remote call.
	ws := healthySubscriber(t, ctx, srv.WSURL, "/m/a")
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/m/over"}); err != nil || r.Successful() {
		t.Fatalf("subscribe over the limit: %v, %v; want refused", r, err)
	}
	if err := ws.Send(ws.NewMessage("/service/rpc", M{"data": M{"n": 1}})); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/service/rpc" && m.Has("data") }); err != nil {
		t.Fatalf("remote call answer: %v", err)
	}

	// A long-polling client: handshake, connect, subscribe, two publishes.
	lp := srv.Client()
	if r, _, err := lp.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("lp handshake: %v, %v", r, err)
	}
	if r, _, err := lp.Connect(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("lp connect: %v, %v", r, err)
	}
	if r, _, err := lp.Subscribe(ctx, "/m/a"); err != nil || !r.Successful() {
		t.Fatalf("lp subscribe: %v, %v", r, err)
	}
	for i := range 2 {
		if r, _, err := lp.Publish(ctx, "/m/a", M{"i": i}, nil); err != nil || !r.Successful() {
			t.Fatalf("lp publish: %v, %v", r, err)
		}
	}
	// A denied handshake and a failed one (no common connection type).
	if r, _, err := srv.Client().Handshake(ctx, M{"ext": M{"deny": true}}); err != nil || r.Successful() {
		t.Fatalf("flagged handshake: %v, %v; want denied", r, err)
	}
	if r, _, err := srv.Client().Handshake(ctx, M{"supportedConnectionTypes": []string{"flash"}}); err != nil || r.Successful() {
		t.Fatalf("flash handshake: %v, %v; want failed", r, err)
	}
	// A request from a foreign origin.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`[]`))
	req.Header.Set("Origin", "http://foreign.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}

	// The long-polling client's connect is held; a REST publish answers it.
	held := make(chan error, 1)
	go func() {
		r, msgs, err := lp.Connect(ctx, nil)
		if err == nil && (!r.Successful() || len(gatewaytest.Events(msgs)) != 1) {
			err = fmt.Errorf("held connect: %v, %v", r, msgs)
		}
		held <- err
	}()
	gatewaytest.Eventually(t, 10*time.Second, func() error {
		select {
		case err := <-held:
			t.Fatalf("connect not held: %v", err)
		default:
		}
		series, _, err := scrape(ctx, metricsURL, metricsToken)
		if err != nil {
			return err
		}
		return expect(series, map[string]float64{`cometgate_connects_held`: 1})
	})
	rest, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.APIAddr().String()+"/v1/publish", strings.NewReader(`{"channel":"/m/a","data":{"rest":true}}`))
	rest.Header.Set("Authorization", "Bearer "+metricsToken)
	rest.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(rest); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("REST publish: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// One gRPC call.
	cc, err := grpc.NewClient(srv.APIAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+metricsToken)
	if _, err := gatewayv1.NewGatewayClient(cc).Stats(gctx, &gatewayv1.StatsRequest{}); err != nil {
		t.Fatalf("gRPC Stats: %v", err)
	}

	want := map[string]float64{
		`cometgate_handshakes_total{result="ok"}`:                                                              2,
		`cometgate_handshakes_total{result="denied"}`:                                                          1,
		`cometgate_handshakes_total{result="failed"}`:                                                          1,
		`cometgate_sessions{transport="websocket"}`:                                                            1,
		`cometgate_sessions{transport="long-polling"}`:                                                         1,
		`cometgate_sessions{transport="callback-polling"}`:                                                     0,
		`cometgate_connects_held`:                                                                              0, // the long poll was answered; a websocket's first connect is not held
		`cometgate_messages_in_total{class="meta"}`:                                                            10,
		`cometgate_messages_in_total{class="service"}`:                                                         1,
		`cometgate_messages_in_total{class="broadcast"}`:                                                       2,
		`cometgate_messages_published_total`:                                                                   3,
		`cometgate_deliveries_total`:                                                                           6,
		`cometgate_websocket_connections`:                                                                      1,
		`cometgate_websocket_opened_total`:                                                                     1,
		`cometgate_origin_refused_total`:                                                                       1,
		`cometgate_limit_hits_total{limit="maxSubscriptions"}`:                                                 1,
		`cometgate_limit_hits_total{limit="maxSessionsPerBrowser"}`:                                            0,
		`cometgate_long_poll_answer_seconds_count`:                                                             1,
		`cometgate_backend_call_duration_seconds_count{backend="echo",code="OK",route="/service/rpc"}`:         1,
		`cometgate_backend_up{backend="echo"}`:                                                                 1,
		`cometgate_api_requests_total{code="200",method="POST /v1/publish",protocol="rest"}`:                   1,
		`cometgate_api_requests_total{code="OK",method="/cometgate.gateway.v1.Gateway/Stats",protocol="grpc"}`: 1,
		`cometgate_sessions_closed_total{reason="slow"}`:                                                       0,
		`cometgate_websocket_closed_total{code="1008"}`:                                                        0,
	}
	var series map[string]float64
	var text string
	gatewaytest.Eventually(t, 10*time.Second, func() error {
		var err error
		if series, text, err = scrape(ctx, metricsURL, metricsToken); err != nil {
			return err
		}
		return expect(series, want)
	})
	if series[`cometgate_bytes_written_total`] <= 0 {
		t.Errorf("cometgate_bytes_written_total = %v; want > 0", series[`cometgate_bytes_written_total`])
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := series[name]; !ok {
			t.Errorf("%s missing: no runtime or process collector", name)
		}
	}
	checkBoundedLabels(t, text, []string{ws.ClientID, lp.ClientID, "/m/a", "/m/over", "foreign.example"})

	// A slow websocket client is cut off: counted once, closed with 1008.
	paused := pausedSubscriber(t, ctx, srv.WSURL, "/slow/a")
	payload := strings.Repeat("x", 32<<10)
	for i := 0; ; i++ {
		if r, _, err := lp.Publish(ctx, "/slow/a", M{"i": i, "p": payload}, nil); err != nil || !r.Successful() {
			t.Fatalf("publish %d: %v, %v", i, r, err)
		}
		if srv.Transport().SlowClosed() > 0 {
			break
		}
		if i > 2000 {
			t.Fatal("the paused client was never cut off")
		}
	}
	waitClosed(t, paused, 30*time.Second)
	gatewaytest.Eventually(t, 10*time.Second, func() error {
		var err error
		if series, text, err = scrape(ctx, metricsURL, metricsToken); err != nil {
			return err
		}
		return expect(series, map[string]float64{
			`cometgate_websocket_slow_closed_total`:         1,
			`cometgate_websocket_closed_total{code="1008"}`: 1,
			`cometgate_websocket_opened_total`:              2,
			`cometgate_websocket_connections`:               1,
			`cometgate_handshakes_total{result="ok"}`:       3,
		})
	})
	checkBoundedLabels(t, text, []string{ws.ClientID, lp.ClientID, "/slow/a"})

	// A disconnect is counted by its reason.
	if r, _, err := lp.Disconnect(ctx); err != nil || !r.Successful() {
		t.Fatalf("disconnect: %v, %v", r, err)
	}
	series, _, err = scrape(ctx, metricsURL, metricsToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := expect(series, map[string]float64{
		`cometgate_sessions_closed_total{reason="disconnect"}`: 1,
		`cometgate_sessions{transport="long-polling"}`:         0,
	}); err != nil {
		t.Error(err)
	}
}

// With metrics.public, /metrics is also served on the public listener,
// without the API's token; with the API on the public listener and
// metrics.public off, it is served there behind the API's token.
func TestMetricsPublic(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*config.Config)
		token     string // needed on the public listener
	}{
		{"metrics.public, API off", func(c *config.Config) {
			c.API.Listen = "off"
			c.Metrics.Public = true
		}, ""},
		{"API on the public listener", func(c *config.Config) {
			c.API.Listen = "public"
			c.API.Tokens = []string{metricsToken}
		}, metricsToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := gatewaytest.NewServer(t, func(c *config.Config) {
				c.Demo.Enabled = config.Bool(false)
				tc.configure(c)
			})
			ctx := gatewaytest.Context(t)
			c := srv.Client()
			if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
				t.Fatalf("handshake: %v, %v", r, err)
			}
			url := "http://" + srv.Addr().String() + "/metrics"
			if tc.token != "" {
				if _, _, err := scrape(ctx, url, ""); err == nil || !strings.Contains(err.Error(), "401") {
					t.Fatalf("scrape without token: %v; want 401", err)
				}
			}
			series, _, err := scrape(ctx, url, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if err := expect(series, map[string]float64{
				`cometgate_handshakes_total{result="ok"}`:      1,
				`cometgate_sessions{transport="long-polling"}`: 1,
			}); err != nil {
				t.Error(err)
			}
		})
	}
}

var labelValue = regexp.MustCompile(`="([^"]*)"`)

// checkBoundedLabels fails the test if a cometgate_ series carries one of
// banned (client ids, channel names, an origin), or a label value that is
// one of the test's channel names.
func checkBoundedLabels(t *testing.T, text string, banned []string) {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, "cometgate_") {
			continue
		}
		for _, b := range banned {
			if b != "" && strings.Contains(line, b) {
				t.Errorf("series %q carries %q", line, b)
			}
		}
		for _, m := range labelValue.FindAllStringSubmatch(line, -1) {
			if v := m[1]; strings.HasPrefix(v, "/m") || strings.HasPrefix(v, "/slow") {
				t.Errorf("series %q has a channel name as a label", line)
			}
		}
	}
}
