package status_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/cometgate/cometgate/gateway/status"
)

const token = "status-test-token-0123456789"

// newServer starts a gateway whose API requires token, and returns it with
// the base URL of the API's own listener ("" with api.listen: public).
func newServer(t *testing.T, configure func(*config.Config)) (*gatewaytest.Server, string) {
	t.Helper()
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.API.Tokens = []string{token}
		if configure != nil {
			configure(c)
		}
	})
	if a := srv.APIAddr(); a != nil {
		return srv, "http://" + a.String()
	}
	return srv, ""
}

// get fetches url with the header (name, value pairs) and no redirects.
func get(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var keyRE = regexp.MustCompile(`data-key="([0-9a-f]{64})"`)

func TestPageAuth(t *testing.T) {
	_, api := newServer(t, nil)
	c := noRedirect(nil)
	bearer := "Bearer " + token
	for _, tt := range []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{name: "page without token", path: "/status", want: http.StatusUnauthorized},
		{name: "page with wrong token", path: "/status", header: []string{"Authorization", "Bearer wrong-token-0123456789"}, want: http.StatusUnauthorized},
		{name: "page with token", path: "/status", header: []string{"Authorization", bearer}, want: http.StatusOK},
		{name: "page with token, foreign Host", path: "/status", header: []string{"Authorization", bearer, "Host", "evil.example:80"}, want: http.StatusUnauthorized},
		{name: "page with wrong query token", path: "/status?token=wrong-token-0123456789", want: http.StatusUnauthorized},
		{name: "bayeux without token", path: status.BayeuxPath, want: http.StatusUnauthorized},
		{name: "bayeux sub-path without token", path: status.BayeuxPath + "/handshake", want: http.StatusUnauthorized},
		{name: "bayeux from another origin", path: status.BayeuxPath, header: []string{"Authorization", bearer, "Origin", "http://127.0.0.1:1"}, want: http.StatusForbidden},
		{name: "bayeux with token", path: status.BayeuxPath, header: []string{"Authorization", bearer}, want: http.StatusBadRequest}, // a GET is no Bayeux request, but it got through
		{name: "client library", path: "/status/js/cometd/cometd.js", want: http.StatusOK},
		{name: "client license", path: "/status/js/cometd/LICENSE", want: http.StatusOK},
		{name: "page script", path: "/status/status.js", want: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, api+tt.path, tt.header...)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s: status %d; want %d (%s)", tt.path, resp.StatusCode, tt.want, body)
			}
			if tt.want == http.StatusOK && tt.path == "/status" && !keyRE.MatchString(body) {
				t.Errorf("page has no status key: %.300s", body)
			}
			if tt.want == http.StatusUnauthorized && keyRE.MatchString(body) {
				t.Errorf("refusal reveals the status key")
			}
		})
	}
}

func TestPageTokenOnce(t *testing.T) {
	_, api := newServer(t, nil)
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, _ := get(t, c, api+"/status?token="+token)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/status" {
		t.Fatalf("GET /status?token=: status %d, Location %q; want 303 to /status", resp.StatusCode, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		ck = x
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/status" {
		t.Fatalf("cookie %+v; want HttpOnly, SameSite=Strict, Path=/status", ck)
	}
	// The cookie alone now opens the page and its Bayeux endpoint.
	resp, body := get(t, c, api+"/status")
	if resp.StatusCode != http.StatusOK || !keyRE.MatchString(body) {
		t.Fatalf("GET /status with the cookie: status %d; want 200 with the page", resp.StatusCode)
	}
	resp, _ = get(t, c, api+status.BayeuxPath)
	if resp.StatusCode == http.StatusUnauthorized {
		t.Fatalf("GET %s with the cookie: 401", status.BayeuxPath)
	}
}

// pageKey loads the page with the token and returns its status key.
func pageKey(t *testing.T, api string) string {
	t.Helper()
	resp, body := get(t, http.DefaultClient, api+"/status", "Authorization", "Bearer "+token)
	m := keyRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /status: status %d, no key", resp.StatusCode)
	}
	return m[1]
}

func statusExt(key string) gatewaytest.Message {
	return gatewaytest.Message{"ext": map[string]any{"cometgate": map[string]any{"statusKey": key}}}
}

func TestPolicy(t *testing.T) {
	srv, api := newServer(t, nil)
	key := pageKey(t, api)
	ctx := gatewaytest.Context(t)

	c := srv.Client()
	if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v %v", r, err)
	}
	for _, ch := range []string{status.Channel, "/cometgate/**", "/cometgate/*"} {
		r, _, err := c.Subscribe(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if r.Successful() || !strings.HasPrefix(r.Str("error"), "403:") {
			t.Errorf("normal client subscribing to %s: %v; want a 403 error", ch, r)
		}
	}
	r, _, err := c.Publish(ctx, status.Channel, map[string]any{"sessions": 1e9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Successful() || !strings.HasPrefix(r.Str("error"), "403:") {
		t.Errorf("normal client publishing to %s: %v; want a 403 error", status.Channel, r)
	}

	// A wrong key is refused; the right one, on the public endpoint too,
	// may subscribe (the key is the credential, the API listener only
	// keeps the page and its key behind the API's authentication).
	bad := srv.Client()
	if r, _, err := bad.Handshake(ctx, statusExt(strings.Repeat("0", 64))); err != nil || r.Successful() {
		t.Errorf("handshake with a wrong status key: %v %v; want refused", r, err)
	}
	good := srv.Client()
	if r, _, err := good.Handshake(ctx, statusExt(key)); err != nil || !r.Successful() {
		t.Fatalf("handshake with the status key: %v %v", r, err)
	}
	if r, _, err := good.Subscribe(ctx, status.Channel); err != nil || !r.Successful() {
		t.Errorf("status session subscribing: %v %v; want success", r, err)
	}
	if r, _, err := good.Publish(ctx, status.Channel, 1, nil); err != nil || r.Successful() {
		t.Errorf("status session publishing: %v %v; want refused", r, err)
	}
}

// authTransport adds the bearer token to every request.
type authTransport struct{ next http.RoundTripper }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return a.next.RoundTrip(r)
}

// snapshot is the part of a status message the test reads.
type snapshot struct {
	Sessions    int            `json:"sessions"`
	ByTransport map[string]int `json:"byTransport"`
	Totals      struct {
		Handshakes int64 `json:"handshakes"`
		Published  int64 `json:"published"`
	} `json:"totals"`
	Rates     map[string]float64   `json:"rates"`
	TopBySubs []status.ChannelStat `json:"topBySubscribers"`
	TopByRate []status.ChannelStat `json:"topByRate"`
	Backends  []status.BackendStat `json:"backends"`
	Errors    []status.Entry       `json:"errors"`
}

func TestSnapshot(t *testing.T) {
	srv, api := newServer(t, func(c *config.Config) {
		c.Backends = map[string]config.BackendConfig{"down": {Target: "127.0.0.1:1"}}
		c.Routes = []config.RouteConfig{{Channel: "/service/down", Backend: "down"}}
		c.SetDefaults()
	})
	key := pageKey(t, api)
	ctx := gatewaytest.Context(t)

	// The status page's session, through the API listener's endpoint.
	st := gatewaytest.NewClient(api+status.BayeuxPath, nil)
	st.HTTP.Transport = authTransport{st.HTTP.Transport}
	if r, _, err := st.Handshake(ctx, statusExt(key)); err != nil || !r.Successful() {
		t.Fatalf("status handshake: %v %v", r, err)
	}
	if r, _, err := st.Subscribe(ctx, status.Channel); err != nil || !r.Successful() {
		t.Fatalf("status subscribe: %v %v", r, err)
	}

	// Known actions: two sessions on /chat/a, one on /chat/b, three
	// messages on /chat/a, one websocket session, one failed remote call.
	var clients []*gatewaytest.Client
	for _, ch := range []string{"/chat/a", "/chat/a", "/chat/b"} {
		c := srv.Client()
		if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
			t.Fatalf("handshake: %v %v", r, err)
		}
		if r, _, err := c.Subscribe(ctx, ch); err != nil || !r.Successful() {
			t.Fatalf("subscribe %s: %v %v", ch, r, err)
		}
		clients = append(clients, c)
	}
	for i := range 3 {
		if r, _, err := clients[2].Publish(ctx, "/chat/a", i, nil); err != nil || !r.Successful() {
			t.Fatalf("publish: %v %v", r, err)
		}
	}
	// The call is answered later (with its error) on the caller's next
	// connect; the snapshot shows its failure.
	if _, _, err := clients[2].Publish(ctx, "/service/down", "x", nil); err != nil {
		t.Fatal(err)
	}
	ws, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(5*time.Second, gatewaytest.Message{"supportedConnectionTypes": []string{"websocket"}}); err != nil || !r.Successful() {
		t.Fatalf("websocket handshake: %v %v", r, err)
	}
	if err := ws.Send(ws.NewMessage("/meta/connect", gatewaytest.Message{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}

	want := func(s snapshot) error {
		switch {
		case s.Sessions != 5:
			return fmt.Errorf("sessions %d; want 5", s.Sessions)
		case s.ByTransport["websocket"] != 1 || s.ByTransport["long-polling"] < 1:
			return fmt.Errorf("byTransport %v; want websocket 1, long-polling >= 1", s.ByTransport)
		case s.Totals.Handshakes != 5 || s.Totals.Published != 3:
			return fmt.Errorf("totals %+v; want 5 handshakes, 3 published", s.Totals)
		case len(s.TopBySubs) != 2 || s.TopBySubs[0].Channel != "/chat/a" || s.TopBySubs[0].Subscribers != 2 || s.TopBySubs[1].Channel != "/chat/b" || s.TopBySubs[1].Subscribers != 1:
			return fmt.Errorf("topBySubscribers %+v; want /chat/a 2, /chat/b 1", s.TopBySubs)
		case len(s.TopByRate) != 1 || s.TopByRate[0].Channel != "/chat/a" || s.TopByRate[0].Published != 3:
			return fmt.Errorf("topByRate %+v; want /chat/a with 3 published", s.TopByRate)
		case len(s.Backends) != 1 || s.Backends[0].Name != "down" || s.Backends[0].Kind != "grpc" || s.Backends[0].Calls != 1 || s.Backends[0].Failures != 1 || s.Backends[0].State == "READY":
			return fmt.Errorf("backends %+v; want down (grpc), 1 call, 1 failure, not READY", s.Backends)
		}
		for _, e := range s.Errors {
			if e.Level == "WARN" && e.Message == "remote call failed" && strings.Contains(e.Attrs, "backend=down") {
				return nil
			}
		}
		return fmt.Errorf("errors %+v; want the failed call's warning", s.Errors)
	}
	var last error = fmt.Errorf("no snapshot")
	gatewaytest.Eventually(t, 15*time.Second, func() error {
		_, msgs, err := st.Connect(ctx, nil)
		if err != nil {
			return err
		}
		for _, m := range gatewaytest.Events(msgs) {
			if m.Channel() != status.Channel {
				continue
			}
			var s snapshot
			raw, _ := json.Marshal(m["data"])
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if last = want(s); last == nil {
				return nil
			}
		}
		return last
	})
	for _, c := range srv.Engine().Channels() {
		if c.Name == status.Channel && c.Subscribers != 1 {
			t.Errorf("%s has %d subscribers; want 1", c.Name, c.Subscribers)
		}
	}
}

// TestPageOnPublicListener: with api.listen: public, the page and its
// Bayeux endpoint are on the public listener, with the same checks.
func TestPageOnPublicListener(t *testing.T) {
	srv, _ := newServer(t, func(c *config.Config) { c.API.Listen = "public" })
	base := "http://" + srv.Addr().String()
	c := noRedirect(nil)
	if resp, _ := get(t, c, base+"/status"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /status without a token: %d; want 401", resp.StatusCode)
	}
	if resp, body := get(t, c, base+"/status", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK || !keyRE.MatchString(body) {
		t.Errorf("GET /status with the token: %d; want 200 with the page", resp.StatusCode)
	}
	if resp, _ := get(t, c, base+status.BayeuxPath); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s without a token: %d; want 401", status.BayeuxPath, resp.StatusCode)
	}
}
