package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/api"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

const evil = "http://evil.example"

// rawRequest is one hand-made REST request, as a web page could make a
// browser send it.
type rawRequest struct {
	method, path string
	host         string // Host header; "" keeps the address dialled
	origin       string
	contentType  string
	body         string
	header       map[string]string
}

type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

func sendRaw(t *testing.T, ctx context.Context, addr string, rq rawRequest) rawAnswer {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, "http://"+addr+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.host != "" {
		req.Host = rq.host
	}
	if rq.origin != "" {
		req.Header.Set("Origin", rq.origin)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkStatusJSON checks that a refusal carries a status JSON body with
// the given gRPC code.
func checkStatusJSON(t *testing.T, what string, a rawAnswer, code codes.Code) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || codes.Code(e.Code) != code || e.Message == "" {
		t.Errorf("%s: body %q, want a status JSON with code %d (%v)", what, a.body, code, code)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
}

// TestBrowserRequestsRefused checks the defaults (loopback, no token):
// what a web page can make a browser send (cross-origin simple requests,
// preflights, DNS-rebound requests) is refused, counted and has no
// effect, while curl-like clients are served.
func TestBrowserRequestsRefused(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, nil)
	addr := apiAddr(t, srv)
	_, port, _ := net.SplitHostPort(addr)
	sub := newLP(t, ctx, srv)
	sub.subscribe(t, ctx, "/evil/x")
	publishedBefore := srv.Engine().Stats().Published.Load()

	pub := `{"channel":"/evil/x","data":"pwned"}`
	disconnect := "/v1/clients/" + sub.id + ":disconnect"
	const (
		byHost = iota
		byOrigin
		byType
	)
	cases := []struct {
		name   string
		req    rawRequest
		status int
		by     int
	}{
		{"evil origin, text/plain publish", rawRequest{method: "POST", path: "/v1/publish", origin: evil, contentType: "text/plain", body: pub}, http.StatusForbidden, byOrigin},
		{"evil origin, JSON publish", rawRequest{method: "POST", path: "/v1/publish", origin: evil, contentType: "application/json", body: pub}, http.StatusForbidden, byOrigin},
		{"evil origin, form disconnect", rawRequest{method: "POST", path: disconnect, origin: evil, contentType: "application/x-www-form-urlencoded"}, http.StatusForbidden, byOrigin},
		{"evil origin, bodiless disconnect", rawRequest{method: "POST", path: disconnect, origin: evil}, http.StatusForbidden, byOrigin},
		{"null origin publish", rawRequest{method: "POST", path: "/v1/publish", origin: "null", contentType: "text/plain", body: pub}, http.StatusForbidden, byOrigin},
		{"evil origin reads sessions", rawRequest{method: "GET", path: "/v1/sessions", origin: evil}, http.StatusForbidden, byOrigin},
		{"evil origin preflight", rawRequest{method: "OPTIONS", path: "/v1/publish", origin: evil, header: map[string]string{"Access-Control-Request-Method": "POST"}}, http.StatusForbidden, byOrigin},
		{"same-port origin", rawRequest{method: "POST", path: "/v1/publish", origin: "http://" + addr, contentType: "application/json", body: pub}, http.StatusForbidden, byOrigin},
		{"text/plain publish", rawRequest{method: "POST", path: "/v1/publish", contentType: "text/plain", body: pub}, http.StatusUnsupportedMediaType, byType},
		{"form publish (curl -d)", rawRequest{method: "POST", path: "/v1/publish", contentType: "application/x-www-form-urlencoded", body: pub}, http.StatusUnsupportedMediaType, byType},
		{"publish without Content-Type", rawRequest{method: "POST", path: "/v1/publish", body: pub}, http.StatusUnsupportedMediaType, byType},
		{"text/json publish", rawRequest{method: "POST", path: "/v1/publish", contentType: "text/json", body: pub}, http.StatusUnsupportedMediaType, byType},
		{"bodiless disconnect without Content-Type", rawRequest{method: "POST", path: disconnect}, http.StatusUnsupportedMediaType, byType},
		{"rebound host reads sessions", rawRequest{method: "GET", path: "/v1/sessions", host: "evil.example:" + port}, http.StatusForbidden, byHost},
		{"rebound host without port", rawRequest{method: "GET", path: "/v1/sessions", host: "evil.example"}, http.StatusForbidden, byHost},
		{"rebound host publishes", rawRequest{method: "POST", path: "/v1/publish", host: "evil.example:" + port, contentType: "application/json", body: pub}, http.StatusForbidden, byHost},
		{"localhost subdomain", rawRequest{method: "GET", path: "/v1/stats", host: "evil.localhost:" + port}, http.StatusForbidden, byHost},
	}
	var want api.Refused
	for _, tc := range cases {
		a := sendRaw(t, ctx, addr, tc.req)
		if a.status != tc.status {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.name, a.status, tc.status, a.body)
			continue
		}
		code := codes.PermissionDenied
		if tc.status == http.StatusUnsupportedMediaType {
			code = codes.InvalidArgument
		}
		checkStatusJSON(t, tc.name, a, code)
		if v := a.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q on a refusal", tc.name, v)
		}
		switch tc.by {
		case byHost:
			want.Host++
		case byOrigin:
			want.Origin++
		case byType:
			want.ContentType++
		}
	}
	if got := srv.API().Refused(); got != want {
		t.Errorf("Refused() = %+v; want %+v", got, want)
	}

	// Nothing was published, queued or disconnected.
	if n := srv.Engine().Stats().Published.Load(); n != publishedBefore {
		t.Errorf("refused requests published %d messages", n-publishedBefore)
	}
	rc := newREST("http://"+addr, nil, "")
	if d := queueDepth(t, ctx, apiConn{name: "REST", rest: true, GatewayClient: rc}, sub.id); d != 0 {
		t.Errorf("refused requests queued %d messages", d)
	}
	if srv.Engine().Session(sub.id) == nil {
		t.Fatal("a refused request disconnected the session")
	}

	// gRPC is not a browser's: an Origin there changes nothing.
	g := grpcClient(t, addr)
	if _, err := g.Stats(metadata.AppendToOutgoingContext(ctx, "origin", evil), &gatewayv1.StatsRequest{}); err != nil {
		t.Errorf("gRPC Stats with an Origin: %v", err)
	}

	// curl-like clients: JSON, no Origin, a loopback or IP Host.
	for i, rq := range []rawRequest{
		{method: "POST", path: "/v1/publish", contentType: "application/json", body: `{"channel":"/evil/x","data":1}`},
		{method: "POST", path: "/v1/publish", contentType: "application/json; charset=utf-8", body: `{"channel":"/evil/x","data":2}`},
		{method: "POST", path: "/v1/publish", host: "localhost:" + port, contentType: "Application/JSON", body: `{"channel":"/evil/x","data":3}`},
	} {
		if a := sendRaw(t, ctx, addr, rq); a.status != http.StatusOK {
			t.Fatalf("curl-like publish %d: HTTP %d: %s", i+1, a.status, a.body)
		}
		checkEvent(t, "subscriber", sub.receive(t, ctx, "/evil/x"), "/evil/x", fmt.Sprint(i+1), "")
	}
	for _, host := range []string{"", "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "localhost:1", "LOCALHOST.", "192.0.2.7:8081"} {
		if a := sendRaw(t, ctx, addr, rawRequest{method: "GET", path: "/v1/sessions", host: host}); a.status != http.StatusOK {
			t.Errorf("GET /v1/sessions with Host %q: HTTP %d: %s", host, a.status, a.body)
		}
	}
	if got := srv.API().Refused(); got != want {
		t.Errorf("Refused() after served requests = %+v; want %+v", got, want)
	}
}

// TestAllowedOrigins checks api.allowedOrigins: an allowed origin's
// preflight is answered and its requests are served with CORS headers;
// other origins are still refused.
func TestAllowedOrigins(t *testing.T) {
	const ops = "https://ops.example"
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) { c.API.AllowedOrigins = []string{ops} })
	addr := apiAddr(t, srv)
	sub := newLP(t, ctx, srv)
	sub.subscribe(t, ctx, "/ops/x")

	pre := sendRaw(t, ctx, addr, rawRequest{method: "OPTIONS", path: "/v1/publish", origin: ops, header: map[string]string{
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type",
	}})
	if pre.status != http.StatusNoContent {
		t.Fatalf("preflight from %s: HTTP %d, want 204: %s", ops, pre.status, pre.body)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  ops,
		"Access-Control-Allow-Methods": "POST",
		"Access-Control-Allow-Headers": "Content-Type",
		"Vary":                         "Origin",
	} {
		if got := pre.header.Get(k); !strings.Contains(got, want) {
			t.Errorf("preflight %s: %q, want it to contain %q", k, got, want)
		}
	}
	if pre.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("preflight allows credentials")
	}

	a := sendRaw(t, ctx, addr, rawRequest{method: "POST", path: "/v1/publish", origin: ops, contentType: "application/json", body: `{"channel":"/ops/x","data":"hi"}`})
	if a.status != http.StatusOK {
		t.Fatalf("publish from %s: HTTP %d: %s", ops, a.status, a.body)
	}
	if got := a.header.Get("Access-Control-Allow-Origin"); got != ops {
		t.Errorf("publish from %s: Access-Control-Allow-Origin %q", ops, got)
	}
	checkEvent(t, "subscriber", sub.receive(t, ctx, "/ops/x"), "/ops/x", `"hi"`, "")
	if a := sendRaw(t, ctx, addr, rawRequest{method: "GET", path: "/v1/sessions", origin: "HTTPS://OPS.EXAMPLE"}); a.status != http.StatusOK {
		t.Errorf("GET /v1/sessions from the origin in capitals: HTTP %d: %s", a.status, a.body)
	}
	// An allowed origin still sends JSON.
	if a := sendRaw(t, ctx, addr, rawRequest{method: "POST", path: "/v1/publish", origin: ops, contentType: "text/plain", body: `{"channel":"/ops/x","data":1}`}); a.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain publish from %s: HTTP %d, want 415", ops, a.status)
	}

	for _, o := range []string{"http://ops.example", "https://ops.example:8443", "https://evil.ops.example", evil} {
		a := sendRaw(t, ctx, addr, rawRequest{method: "OPTIONS", path: "/v1/publish", origin: o, header: map[string]string{"Access-Control-Request-Method": "POST"}})
		if a.status != http.StatusForbidden || a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: HTTP %d, Access-Control-Allow-Origin %q; want 403 and none", o, a.status, a.header.Get("Access-Control-Allow-Origin"))
		}
	}
	if got := srv.API().Refused(); got != (api.Refused{Origin: 4, ContentType: 1}) {
		t.Errorf("Refused() = %+v; want 4 by origin, 1 by type", got)
	}
	if d := queueDepth(t, ctx, apiConn{name: "REST", rest: true, GatewayClient: newREST("http://"+addr, nil, "")}, sub.id); d != 0 {
		t.Errorf("refused requests queued %d messages", d)
	}
}

// TestAnyOriginWithToken checks api.allowedOrigins "*" (allowed with
// tokens only): any origin is served, and the token is still required.
func TestAnyOriginWithToken(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) {
		c.API.AllowedOrigins = []string{"*"}
		c.API.Tokens = []string{testToken}
	})
	addr := apiAddr(t, srv)
	pre := sendRaw(t, ctx, addr, rawRequest{method: "OPTIONS", path: "/v1/stats", origin: evil, header: map[string]string{"Access-Control-Request-Method": "GET"}})
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: HTTP %d, Access-Control-Allow-Origin %q; want 204 and *", pre.status, pre.header.Get("Access-Control-Allow-Origin"))
	}
	if a := sendRaw(t, ctx, addr, rawRequest{method: "GET", path: "/v1/stats", origin: evil}); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/stats without a token: HTTP %d, want 401", a.status)
	}
	a := sendRaw(t, ctx, addr, rawRequest{method: "GET", path: "/v1/stats", origin: evil, header: map[string]string{"Authorization": "Bearer " + testToken}})
	if a.status != http.StatusOK || a.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET /v1/stats with the token: HTTP %d, Access-Control-Allow-Origin %q; want 200 and *", a.status, a.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestAllowedHosts checks api.allowedHosts, on the API's own listener and
// on the public one.
func TestAllowedHosts(t *testing.T) {
	for _, public := range []bool{false, true} {
		name := "own listener"
		if public {
			name = "public listener"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startGateway(t, func(c *config.Config) {
				c.API.AllowedHosts = []string{"gw.internal", "Ops.Example."}
				if public {
					c.API.Listen = "public"
				}
			})
			addr := srv.Addr().String()
			if !public {
				addr = apiAddr(t, srv)
			}
			for _, tc := range []struct {
				host string
				ok   bool
			}{
				{"gw.internal", true},
				{"gw.internal:8081", true},
				{"GW.INTERNAL.", true},
				{"ops.example:443", true},
				{"sub.gw.internal", false},
				{"gw.internal.evil.example", false},
				{"evil.example", false},
			} {
				a := sendRaw(t, ctx, addr, rawRequest{method: "GET", path: "/v1/sessions", host: tc.host})
				if tc.ok && a.status != http.StatusOK || !tc.ok && a.status != http.StatusForbidden {
					t.Errorf("GET /v1/sessions with Host %q: HTTP %d, want ok=%v: %s", tc.host, a.status, tc.ok, a.body)
				}
			}
			if got := srv.API().Refused(); got != (api.Refused{Host: 3}) {
				t.Errorf("Refused() = %+v; want 3 by host", got)
			}
		})
	}
}

// TestConfigBrowserChecks checks the validation of api.allowedOrigins and
// api.allowedHosts.
func TestConfigBrowserChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string // "" for valid
	}{
		{"an origin", func(c *config.Config) {
			c.API.AllowedOrigins = []string{"https://ops.example", "http://127.0.0.1:3000"}
		}, ""},
		{"any origin without a token", func(c *config.Config) { c.API.AllowedOrigins = []string{"*"} }, "api.allowedOrigins[0]"},
		{"any origin with mTLS only", func(c *config.Config) {
			c.API.AllowedOrigins = []string{"*"}
			c.API.TLS = config.APITLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, "api.allowedOrigins[0]"},
		{"any origin with a token", func(c *config.Config) { c.API.AllowedOrigins = []string{"*"}; c.API.Tokens = []string{testToken} }, ""},
		{"origin without scheme", func(c *config.Config) { c.API.AllowedOrigins = []string{"https://ok.example", "ops.example"} }, "api.allowedOrigins[1]"},
		{"origin with a path", func(c *config.Config) { c.API.AllowedOrigins = []string{"https://ops.example/"} }, "api.allowedOrigins[0]"},
		{"null origin", func(c *config.Config) { c.API.AllowedOrigins = []string{"null"} }, "api.allowedOrigins[0]"},
		{"host names", func(c *config.Config) { c.API.AllowedHosts = []string{"gw.internal", "cometgate_api", "ops.example."} }, ""},
		{"host with a port", func(c *config.Config) { c.API.AllowedHosts = []string{"gw.internal:8081"} }, "api.allowedHosts[0]"},
		{"host with a scheme", func(c *config.Config) { c.API.AllowedHosts = []string{"ok", "http://gw.internal"} }, "api.allowedHosts[1]"},
		{"empty host", func(c *config.Config) { c.API.AllowedHosts = []string{""} }, "api.allowedHosts[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.mutate(c)
			c.SetDefaults()
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want an error naming %s", tc.wantErr)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate: %v; want a *config.FieldError naming %s", err, tc.wantErr)
			}
		})
	}
}
