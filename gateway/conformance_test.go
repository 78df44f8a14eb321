// Black-box conformance tests of the Bayeux endpoint against a checklist
// of 117 observable behaviours of CometD 8, the reference server. Each test
// names the checklist items it covers in a comment of the form "// #38",
// so the mapping is greppable. Where Cometgate deliberately differs from
// CometD the comment says "Deliberate deviation" and the test checks
// Cometgate's behaviour.
//
// Not covered: #67 (CometD Authorizer ignore(): Cometgate has no
// authorizers, only the Policy).
package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/ext"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/gorilla/websocket"
)

// M is a Bayeux message, sent or received.
type M = gatewaytest.Message

// Timing. Tests that check that something happens promptly run a server
// with the long timeout, so that "prompt" and "held" are seconds apart;
// tests that must wait for a hold to time out use the short one.
const (
	shortT    = time.Second            // hold timeout where a test waits for it
	longT     = 6 * time.Second        // hold timeout where a test checks promptness
	prompt    = 2 * time.Second        // bound of an answer that must not be held
	holdProbe = 300 * time.Millisecond // unanswered this long counts as held
)

func newServer(t *testing.T, timeout time.Duration, configure func(*config.Config), opts ...gateway.Option) *gatewaytest.Server {
	t.Helper()
	return gatewaytest.NewServer(t, func(c *config.Config) {
		c.Bayeux.Timeout = config.Duration(timeout)
		if configure != nil {
			configure(c)
		}
	}, opts...)
}

// client wraps the gatewaytest client with helpers that fail the test on
// transport errors. Its helpers must run on the test's goroutine; use
// async for requests that are expected to be held.
type client struct {
	*gatewaytest.Client
	t   testing.TB
	ctx context.Context
}

func newClient(t testing.TB, srv *gatewaytest.Server) *client {
	return &client{Client: srv.Client(), t: t, ctx: gatewaytest.Context(t)}
}

// newClientJar returns a client sharing jar: another tab of one browser.
func newClientJar(t testing.TB, srv *gatewaytest.Server, jar http.CookieJar) *client {
	return &client{Client: gatewaytest.NewClient(srv.URL, jar), t: t, ctx: gatewaytest.Context(t)}
}

func (c *client) must(r M, msgs []M, err error) (M, []M) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("request failed: %v", err)
	}
	return r, msgs
}

// handshake handshakes and fails the test unless it succeeds.
func (c *client) handshake(fields M) M {
	c.t.Helper()
	r, _ := c.must(c.Handshake(c.ctx, fields))
	if !r.Successful() {
		c.t.Fatalf("handshake failed: %v", r)
	}
	return r
}

// connected handshakes and sends the first connect, which is never held.
func (c *client) connected() *client {
	c.t.Helper()
	c.handshake(nil)
	if r, _ := c.connect(nil); !r.Successful() {
		c.t.Fatalf("first connect failed: %v", r)
	}
	return c
}

func (c *client) call(channel string, fields M) (M, []M) {
	c.t.Helper()
	return c.must(c.Call(c.ctx, channel, fields))
}

func (c *client) connect(fields M) (M, []M) {
	c.t.Helper()
	return c.must(c.Connect(c.ctx, fields))
}

func (c *client) subscribe(sub any) M {
	c.t.Helper()
	r, _ := c.must(c.Subscribe(c.ctx, sub))
	return r
}

func (c *client) mustSubscribe(subs ...string) {
	c.t.Helper()
	for _, s := range subs {
		if r := c.subscribe(s); !r.Successful() {
			c.t.Fatalf("subscribe %s failed: %v", s, r)
		}
	}
}

func (c *client) publish(channel string, data any, fields M) (M, []M) {
	c.t.Helper()
	return c.must(c.Publish(c.ctx, channel, data, fields))
}

func (c *client) mustPublish(channel string, data any) {
	c.t.Helper()
	if r, _ := c.publish(channel, data, nil); !r.Successful() {
		c.t.Fatalf("publish to %s failed: %v", channel, r)
	}
}

// eventsUntil sends connects until an event on channel marker has arrived
// and returns the events received, starting with those in prior (e.g. a
// publish response), the marker last. Session queues are FIFO, so an event
// published before the marker and not returned was not delivered.
func (c *client) eventsUntil(marker string, prior []M) []M {
	c.t.Helper()
	events := gatewaytest.Events(prior)
	for !slices.ContainsFunc(events, func(m M) bool { return m.Channel() == marker }) {
		r, msgs := c.connect(nil)
		if !r.Successful() {
			c.t.Fatalf("connect failed while waiting for %s: %v", marker, r)
		}
		events = append(events, gatewaytest.Events(msgs)...)
	}
	return events
}

// result is the outcome of an asynchronous request.
type result struct {
	msgs    []M
	resp    *http.Response
	err     error
	elapsed time.Duration
}

// reply returns the reply on channel in r, failing the test if absent.
func (r result) reply(t testing.TB, channel string) M {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	m, ok := gatewaytest.FindReply(r.msgs, channel, "")
	if !ok {
		t.Fatalf("no %s reply in %v", channel, r.msgs)
	}
	return m
}

// async sends msgs in one request on another goroutine.
func (c *client) async(msgs ...M) <-chan result {
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		out, resp, err := c.Send(c.ctx, msgs...)
		ch <- result{out, resp, err, time.Since(start)}
	}()
	return ch
}

// asyncConnect sends a long-polling connect (plus fields) asynchronously.
func (c *client) asyncConnect(fields M) <-chan result {
	f := M{"connectionType": "long-polling"}
	for k, v := range fields {
		f[k] = v
	}
	return c.async(c.NewMessage("/meta/connect", f))
}

// assertHeld fails unless the request stays unanswered for holdProbe.
func assertHeld(t testing.TB, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("request answered after %v, want it held: %v (err %v)", r.elapsed, r.msgs, r.err)
	case <-time.After(holdProbe):
	}
}

// assertAllHeld fails unless none of the requests is answered within
// holdProbe.
func assertAllHeld(t testing.TB, chans []<-chan result) {
	t.Helper()
	probe := time.NewTimer(holdProbe)
	defer probe.Stop()
	<-probe.C
	for i, ch := range chans {
		select {
		case r := <-ch:
			t.Fatalf("request %d answered after %v, want it held: %v (err %v)", i, r.elapsed, r.msgs, r.err)
		default:
		}
	}
}

// await waits up to within for an asynchronous request's result.
func await(t testing.TB, ch <-chan result, within time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("request not answered within %v", within)
		return result{}
	}
}

func wantSuccess(t testing.TB, r M) {
	t.Helper()
	if !r.Successful() {
		t.Fatalf("reply %v: want successful:true", r)
	}
}

func wantFailure(t testing.TB, r M, wantErr string) {
	t.Helper()
	if !r.Has("successful") || r.Successful() || r.Str("error") != wantErr {
		t.Fatalf("reply %v: want successful:false, error %q", r, wantErr)
	}
}

func channelsOf(msgs []M) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Channel())
	}
	return out
}

// indexOf returns the index of the first message of msgs for which match
// is true, or -1.
func indexOf(msgs []M, match func(M) bool) int { return slices.IndexFunc(msgs, match) }

func onChannel(ch string) func(M) bool { return func(m M) bool { return m.Channel() == ch } }

func isReplyOn(ch string) func(M) bool {
	return func(m M) bool { return m.IsReply() && m.Channel() == ch }
}

func setCookies(resp *http.Response, name string) []string {
	var out []string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			out = append(out, v)
		}
	}
	return out
}

// policy is a security policy for the tests that need denials: the
// configured errors are returned for the matching operations, and
// DefaultPolicy decides the rest.
type policy struct {
	engine.DefaultPolicy
	handshake error
	subscribe map[string]error // by channel
	publish   map[string]error // by channel
}

func (p policy) CanHandshake(context.Context, *engine.Session, *bayeux.Message) error {
	return p.handshake
}

func (p policy) CanSubscribe(ctx context.Context, s *engine.Session, ch string, m *bayeux.Message) error {
	if err := p.subscribe[ch]; err != nil {
		return err
	}
	return p.DefaultPolicy.CanSubscribe(ctx, s, ch, m)
}

func (p policy) CanPublish(ctx context.Context, s *engine.Session, ch string, m *bayeux.Message) error {
	if err := p.publish[ch]; err != nil {
		return err
	}
	return p.DefaultPolicy.CanPublish(ctx, s, ch, m)
}

func withPolicy(p engine.Policy) gateway.Option {
	return gateway.WithEngineOptions(engine.WithPolicy(p))
}

// ---------------------------------------------------------------------------
// A. Envelope / HTTP

// #1 #3: a handshake POST gets 200, application/json, a one-element array.
func TestHandshakeEnvelope(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	msgs, resp, err := c.Send(c.ctx, c.NewMessage("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}}))
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q; want application/json...", ct)
	}
	if len(msgs) != 1 || msgs[0].Channel() != "/meta/handshake" || !msgs[0].Successful() {
		t.Fatalf("handshake response = %v; want one successful /meta/handshake reply", msgs)
	}
	// #3 holds for every successful long-polling response, connects included.
	c.ClientID = msgs[0].Str("clientId")
	_, resp, err = c.Send(c.ctx, c.NewMessage("/meta/connect", M{"connectionType": "long-polling"}))
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("connect Content-Type = %q; want application/json...", ct)
	}
}

// #2: a handshake sent as a bare object (not an array) is accepted (REC).
func TestHandshakeBareObject(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	resp, body, err := c.Post(c.ctx, "application/json", []byte(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d (%s); want 200", resp.StatusCode, body)
	}
	msgs, err := decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !msgs[0].Successful() {
		t.Fatalf("reply = %v; want one successful handshake reply", msgs)
	}
}

func decode(body []byte) ([]M, error) {
	var msgs []M
	err := json.Unmarshal(body, &msgs)
	return msgs, err
}

// #4 #5 #6 #9 and the request limits: requests that cannot be processed at
// all are refused with an HTTP status and no Bayeux body.
func TestHTTPRequestErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) {
		c.Limits.MaxRequestBytes = 2048
		c.Limits.MaxBatch = 4
	})
	hs := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}`
	pub := `{"channel":"/x","clientId":"nosuch","data":1}`
	tests := []struct {
		name   string
		method string
		query  url.Values
		body   string
		want   int
	}{
		// #4
		{name: "truncated JSON", method: http.MethodPost, body: `[{"channel":"/meta/handshake","version":`, want: 400},
		// #5 Deliberate deviation: CometD answers 500, Cometgate 400.
		{name: "empty array", method: http.MethodPost, body: `[]`, want: 400},
		// #6 Deliberate deviation: CometD answers 500, Cometgate 400.
		{name: "handshake batched with publish", method: http.MethodPost, body: "[" + hs + "," + pub + "]", want: 400},
		// #9
		{name: "GET without jsonp", method: http.MethodGet, query: url.Values{"message": {"[" + hs + "]"}}, want: 400},
		{name: "PUT", method: http.MethodPut, body: "[" + hs + "]", want: 400},
		// Deliberate deviations: oversized body and too many messages are 413.
		{name: "body too large", method: http.MethodPost, body: `[{"channel":"/x","data":"` + strings.Repeat("x", 4096) + `"}]`, want: 413},
		{name: "too many messages", method: http.MethodPost, body: "[" + strings.Repeat(pub+",", 4) + pub + "]", want: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			u := srv.URL
			if len(tt.query) > 0 {
				u += "?" + tt.query.Encode()
			}
			req, err := http.NewRequestWithContext(c.ctx, tt.method, u, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, b, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d (%q); want %d", tt.method, tt.name, resp.StatusCode, b, tt.want)
			}
			if strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
				t.Errorf("error response carries a Bayeux body: %q", b)
			}
		})
	}
}

// #6: no session is created by a handshake batched with other messages
// (checked on a server of its own, so that no other test adds sessions).
func TestHandshakeBatchedCreatesNoSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	hs := c.NewMessage("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	_, resp, err := c.Send(c.ctx, hs, c.NewMessage("/x", M{"data": 1}))
	var se *gatewaytest.StatusError
	if !errors.As(err, &se) || resp.StatusCode != 400 {
		t.Fatalf("[handshake, publish]: err %v; want HTTP 400 (deliberate deviation: CometD 500)", err)
	}
	if n := srv.Engine().SessionCount(); n != 0 {
		t.Errorf("SessionCount() = %d after a refused handshake batch; want 0", n)
	}
	if got := setCookies(resp, "BAYEUX_BROWSER"); len(got) != 0 {
		t.Errorf("refused batch set cookie %v", got)
	}
}

// #7: the sub-paths the JS client appends behave as the base URL.
func TestSubPaths(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	c.URL = srv.URL + "/handshake"
	c.handshake(nil)
	c.URL = srv.URL + "/connect"
	r, _ := c.connect(nil)
	wantSuccess(t, r)
	c.URL = srv.URL + "/subscribe"
	wantSuccess(t, c.subscribe("/sub/path"))
	c.URL = srv.URL + "/disconnect"
	r, _ = c.call("/meta/disconnect", nil)
	wantSuccess(t, r)
}

// #8: OPTIONS (CORS preflight) gets 200 and an empty body.
func TestOptions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	req, err := http.NewRequestWithContext(c.ctx, http.MethodOptions, srv.URL+"/handshake", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("OPTIONS = %d %q; want 200 with an empty body", resp.StatusCode, body)
	}
}

// #10 #11: the request charset. Without a Content-Type the body is UTF-8;
// with a charset parameter the body is decoded with that charset.
func TestPublishCharset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		data        string // raw bytes of the JSON string's content
		want        string
	}{
		{name: "no content type is UTF-8", contentType: "", data: "é", want: "é"},                              // #10
		{name: "ISO-8859-7", contentType: "application/json;charset=ISO-8859-7", data: "\xe1\xe2", want: "αβ"}, // #11
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, longT, nil)
			a := newClient(t, srv).connected()
			b := newClient(t, srv).connected()
			b.mustSubscribe("/charset")
			body := `[{"channel":"/charset","clientId":"` + a.ClientID + `","id":"1","data":"` + tt.data + `"}]`
			resp, rb, err := a.Post(a.ctx, tt.contentType, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("publish status %d (%q); want 200", resp.StatusCode, rb)
			}
			events := b.eventsUntil("/charset", nil)
			if got := events[len(events)-1]["data"]; got != tt.want {
				t.Errorf("delivered data = %q; want %q", got, tt.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// B. Handshake

var alnum = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// #12 #14 #15 #16 #17 #18 #19: the successful handshake reply and the
// browser cookie.
func TestHandshakeReply(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	msgs, resp, err := c.Send(c.ctx, c.NewMessage("/meta/handshake", M{
		"id": "abc1", "version": "1.0", "minimumVersion": "1.0",
		"supportedConnectionTypes": []string{"websocket", "long-polling", "callback-polling"},
		"advice":                   M{"timeout": 60000, "interval": 0},
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := msgs[0]
	wantSuccess(t, r)
	if id := r.Str("clientId"); !alnum.MatchString(id) { // #12
		t.Errorf("clientId = %q; want a non-empty [A-Za-z0-9] string", id)
	}
	if r.Str("version") != "1.0" || r.Str("minimumVersion") != "1.0" { // #14
		t.Errorf("version, minimumVersion = %v, %v; want 1.0, 1.0", r["version"], r["minimumVersion"])
	}
	types, _ := r["supportedConnectionTypes"].([]any) // #15
	if !slices.Contains(types, any("long-polling")) {
		t.Errorf("supportedConnectionTypes = %v; want it to contain long-polling", r["supportedConnectionTypes"])
	}
	if r["id"] != "abc1" { // #16
		t.Errorf("id = %v; want abc1", r["id"])
	}
	wantAdvice := M{"reconnect": "retry", "interval": 0.0, "timeout": float64(longT.Milliseconds())} // #17
	if !reflect.DeepEqual(r.Obj("advice"), wantAdvice) {
		t.Errorf("advice = %v; want %v", r.Obj("advice"), wantAdvice)
	}
	// #18
	cookies := setCookies(resp, "BAYEUX_BROWSER")
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie BAYEUX_BROWSER = %v; want one", resp.Header.Values("Set-Cookie"))
	}
	parts := strings.Split(cookies[0], ";")
	value := strings.TrimPrefix(parts[0], "BAYEUX_BROWSER=")
	var attrs []string
	for _, p := range parts[1:] {
		attrs = append(attrs, strings.TrimSpace(p))
	}
	if len(value) != 16 || !alnum.MatchString(value) || !slices.Contains(attrs, "Path=/") || !slices.Contains(attrs, "HttpOnly") {
		t.Errorf("Set-Cookie = %q; want BAYEUX_BROWSER=<16 chars>; Path=/; HttpOnly", cookies[0])
	}
	// #19: a handshake that already sends the cookie gets no new one.
	_, resp, err = c.Send(c.ctx, c.NewMessage("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := setCookies(resp, "BAYEUX_BROWSER"); len(got) != 0 {
		t.Errorf("second handshake with the cookie set %v; want no Set-Cookie", got)
	}
}

// #13: every handshake gets its own clientId.
func TestHandshakeDistinctClientIDs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	seen := map[string]bool{}
	for range 5 {
		id := newClient(t, srv).handshake(nil).Str("clientId")
		if seen[id] {
			t.Fatalf("clientId %q issued twice", id)
		}
		seen[id] = true
	}
}

// #21 #25: CometD does not check version or client advice: these
// handshakes all succeed with the server's transport list. (#20, a list
// with no common transport, is in negotiation_test.go.)
func TestHandshakeLenient(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	tests := []struct {
		name   string
		fields M
	}{
		{name: "no version", fields: M{"version": nil}},                                                   // #21
		{name: "client advice", fields: M{"advice": M{"timeout": 1}}},                                     // #25
		{name: "clientId field", fields: M{"clientId": "whatever"}},                                       // #25
		{name: "no supportedConnectionTypes", fields: M{"supportedConnectionTypes": nil, "version": nil}}, // #21
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			r := c.handshake(tt.fields)
			want := []any{"websocket", "long-polling", "callback-polling"}
			if !reflect.DeepEqual(r["supportedConnectionTypes"], want) {
				t.Errorf("supportedConnectionTypes = %v; want the server's %v", r["supportedConnectionTypes"], want)
			}
			if id := r.Str("clientId"); id == "" || id == "whatever" {
				t.Errorf("clientId = %q; want a fresh id", id)
			}
			wantAdvice := M{"reconnect": "retry", "interval": 0.0, "timeout": float64(longT.Milliseconds())}
			if !reflect.DeepEqual(r.Obj("advice"), wantAdvice) {
				t.Errorf("advice = %v; want %v", r.Obj("advice"), wantAdvice)
			}
		})
	}
}

// #22 #23 #24: a handshake denied by the security policy.
func TestHandshakeDenied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantError     string
		wantReconnect string
	}{
		{name: "denied", err: engine.ErrDenied, wantError: "403::handshake_denied", wantReconnect: "none"}, // #22
		{ // #23: the policy's own advice is kept
			name:      "denied with handshake advice",
			err:       &bayeux.Error{Code: 403, Message: "handshake_denied", Reconnect: bayeux.ReconnectHandshake},
			wantError: "403::handshake_denied", wantReconnect: "handshake",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, longT, nil, withPolicy(policy{handshake: tt.err}))
			c := newClient(t, srv)
			msgs, resp, err := c.Send(c.ctx, c.NewMessage("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}}))
			if err != nil {
				t.Fatal(err)
			}
			r := msgs[0]
			wantFailure(t, r, tt.wantError)
			if got := r.Obj("advice").Str("reconnect"); got != tt.wantReconnect {
				t.Errorf("advice.reconnect = %q; want %q", got, tt.wantReconnect)
			}
			if r.Has("clientId") { // #24
				t.Errorf("failed handshake reply carries clientId: %v", r)
			}
			if got := setCookies(resp, "BAYEUX_BROWSER"); len(got) != 0 {
				t.Errorf("failed handshake set cookie %v", got)
			}
			if n := srv.Engine().SessionCount(); n != 0 {
				t.Errorf("SessionCount() = %d after a denied handshake; want 0", n)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// C. Connect

// #26: the first connect after a handshake is never held.
func TestFirstConnectNotHeld(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	c.handshake(nil)
	r := await(t, c.asyncConnect(nil), prompt)
	wantSuccess(t, r.reply(t, "/meta/connect"))
}

// #27 #28 #29: a later connect with nothing queued is held for the timeout,
// and its reply echoes the id and carries neither clientId nor advice.
func TestConnectHeldForTimeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, shortT, nil)
	c := newClient(t, srv).connected()
	m := c.NewMessage("/meta/connect", M{"connectionType": "long-polling", "id": "c2"})
	start := time.Now()
	msgs, _, err := c.Send(c.ctx, m)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < shortT*9/10 || elapsed > shortT+5*time.Second {
		t.Errorf("held connect answered after %v; want about %v", elapsed, shortT)
	}
	if len(msgs) != 1 {
		t.Fatalf("response %v; want the connect reply alone", msgs)
	}
	r := msgs[0]
	wantSuccess(t, r)
	if r.Channel() != "/meta/connect" || r["id"] != "c2" { // #28
		t.Errorf("reply %v; want channel /meta/connect, id c2", r)
	}
	if r.Has("clientId") { // #28
		t.Errorf("connect reply carries clientId: %v", r)
	}
	if r.Has("advice") { // #29
		t.Errorf("timed-out connect reply carries advice: %v", r)
	}
}

// #30 #31 #32: client advice on a connect.
func TestConnectClientAdvice(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	tests := []struct {
		name       string
		advice     M
		minElapsed time.Duration
		wantAdvice M // nil: no advice expected
	}{
		{ // #30
			name: "timeout 0", advice: M{"timeout": 0},
			wantAdvice: M{"reconnect": "retry", "interval": 0.0, "timeout": float64(longT.Milliseconds())},
		},
		{ // #31
			name: "timeout 0 interval 1000", advice: M{"timeout": 0, "interval": 1000},
			wantAdvice: M{"reconnect": "retry", "interval": 1000.0, "timeout": float64(longT.Milliseconds())},
		},
		{ // #32: the client's timeout applies even though the server's is longer
			name: "timeout 500", advice: M{"timeout": 500}, minElapsed: 450 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv).connected()
			res := await(t, c.asyncConnect(M{"advice": tt.advice}), prompt+tt.minElapsed)
			r := res.reply(t, "/meta/connect")
			wantSuccess(t, r)
			if res.elapsed < tt.minElapsed {
				t.Errorf("answered after %v; want at least %v", res.elapsed, tt.minElapsed)
			}
			if tt.wantAdvice != nil && !reflect.DeepEqual(r.Obj("advice"), tt.wantAdvice) {
				t.Errorf("advice = %v; want %v", r.Obj("advice"), tt.wantAdvice)
			}
			if tt.wantAdvice == nil && r.Obj("advice").Str("reconnect") != "" && r.Obj("advice").Str("reconnect") != "retry" {
				t.Errorf("advice = %v; want reconnect retry if any", r.Obj("advice"))
			}
		})
	}
}

// A client's advice may shorten the hold, never lengthen it: a connect
// asking for a minute is held for the server's timeout (CometD would hold
// it for the minute, pinning the request and the session).
func TestConnectClientAdviceLongerThanServer(t *testing.T) {
	t.Parallel()
	srv := newServer(t, shortT, nil)
	c := newClient(t, srv).connected()
	res := await(t, c.asyncConnect(M{"advice": M{"timeout": 60000}}), shortT+prompt)
	wantSuccess(t, res.reply(t, "/meta/connect"))
	if res.elapsed < shortT*9/10 {
		t.Errorf("answered after %v; want about the server's %v", res.elapsed, shortT)
	}
}

// #33 #34 #35 #36: connects that name no session this browser owns get
// 402::session_unknown with advice to handshake.
func TestConnectUnknownSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	other := newClient(t, srv)
	other.handshake(nil)
	tests := []struct {
		name  string
		setup func(t *testing.T) *client
	}{
		{name: "unknown clientId", setup: func(t *testing.T) *client { // #33
			c := newClient(t, srv)
			c.handshake(nil)
			c.ClientID = "nosuchclient"
			return c
		}},
		{name: "no clientId", setup: func(t *testing.T) *client { // #34
			c := newClient(t, srv)
			c.handshake(nil)
			c.ClientID = ""
			return c
		}},
		{name: "cookie jar cleared", setup: func(t *testing.T) *client { // #35
			c := newClient(t, srv)
			c.handshake(nil)
			fresh := newClient(t, srv)
			fresh.ClientID = c.ClientID
			return fresh
		}},
		{name: "another browser's clientId", setup: func(t *testing.T) *client { // #36
			c := newClient(t, srv)
			c.handshake(nil)
			c.ClientID = other.ClientID
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.setup(t)
			res := await(t, c.asyncConnect(nil), prompt)
			r := res.reply(t, "/meta/connect")
			wantFailure(t, r, "402::session_unknown")
			want := M{"reconnect": "handshake", "interval": 0.0}
			if !reflect.DeepEqual(r.Obj("advice"), want) {
				t.Errorf("advice = %v; want %v", r.Obj("advice"), want)
			}
		})
	}
}

// #35: with trustClientSession a clientId alone identifies the session.
func TestConnectTrustClientSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Bayeux.TrustClientSession = true })
	c := newClient(t, srv)
	c.handshake(nil)
	fresh := newClient(t, srv)
	fresh.ClientID = c.ClientID
	r, _ := fresh.connect(nil)
	wantSuccess(t, r)
	assertHeld(t, fresh.asyncConnect(nil))
}

// #37: connectionType is not checked.
func TestConnectConnectionTypeNotChecked(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	for _, ct := range []any{nil, "bogus"} {
		t.Run(fmt.Sprint(ct), func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			c.handshake(nil)
			r, _ := c.connect(M{"connectionType": ct})
			wantSuccess(t, r)
		})
	}
}

// #38: a publish wakes another session's held connect at once, and the
// event precedes the connect reply.
func TestHeldConnectWokenByPublish(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/wake")
	held := b.asyncConnect(nil)
	assertHeld(t, held)
	a.mustPublish("/wake", "hello")
	res := await(t, held, prompt)
	wantSuccess(t, res.reply(t, "/meta/connect"))
	ev := indexOf(res.msgs, onChannel("/wake"))
	rp := indexOf(res.msgs, isReplyOn("/meta/connect"))
	if ev < 0 || ev > rp {
		t.Errorf("response %v; want the /wake event before the connect reply", res.msgs)
	}
}

// #39: a connect batched with other messages is not held; replies come in
// request order.
func TestConnectBatchedNotHeld(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	res := await(t, c.async(
		c.NewMessage("/meta/connect", M{"connectionType": "long-polling"}),
		c.NewMessage("/meta/subscribe", M{"subscription": "/batched"}),
	), prompt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := channelsOf(res.msgs); !reflect.DeepEqual(got, []string{"/meta/connect", "/meta/subscribe"}) {
		t.Errorf("reply channels = %v; want [/meta/connect /meta/subscribe]", got)
	}
	for _, m := range res.msgs {
		wantSuccess(t, m)
	}
}

// #40: a second connect of the same session ends the held one with HTTP 500
// and is held itself.
func TestDuplicateConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	c2 := c.asyncConnect(nil)
	assertHeld(t, c2)
	c3 := c.asyncConnect(nil)
	res := await(t, c2, prompt)
	var se *gatewaytest.StatusError
	if !errors.As(res.err, &se) || se.StatusCode != 500 {
		t.Errorf("superseded connect: msgs %v err %v; want HTTP 500", res.msgs, res.err)
	}
	assertHeld(t, c3)
}

// #41: a disconnect answers the held connect with reconnect "none".
func TestDisconnectWakesHeldConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	held := c.asyncConnect(nil)
	assertHeld(t, held)
	r, _ := c.call("/meta/disconnect", nil)
	wantSuccess(t, r)
	res := await(t, held, prompt)
	if got := res.reply(t, "/meta/connect").Obj("advice").Str("reconnect"); got != "none" {
		t.Errorf("held connect advice.reconnect = %q; want none (%v)", got, res.msgs)
	}
}

// #42 #43: a second session of one browser (shared cookie jar) does not get
// to hold a long poll while the first holds one.
func TestMultipleClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		interval   time.Duration // bayeux.multiSessionInterval
		successful bool
		wantAdvice M
	}{
		{ // #42
			name: "default", successful: true,
			wantAdvice: M{"multiple-clients": true, "reconnect": "retry", "interval": 2000.0},
		},
		{ // #43: CometD refuses with multiSessionInterval=0; Cometgate's
			// configuration spells it as a negative interval (0 means default).
			name: "refused", interval: -time.Millisecond, successful: false,
			wantAdvice: M{"multiple-clients": true, "reconnect": "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, longT, func(c *config.Config) {
				if tt.interval != 0 {
					c.Bayeux.MultiSessionInterval = config.Duration(tt.interval)
				}
			})
			x := newClient(t, srv).connected()
			assertHeld(t, x.asyncConnect(nil))
			y := newClientJar(t, srv, x.HTTP.Jar).connected()
			res := await(t, y.asyncConnect(nil), prompt)
			r := res.reply(t, "/meta/connect")
			if r.Successful() != tt.successful {
				t.Errorf("second tab connect %v; want successful %v", r, tt.successful)
			}
			a := r.Obj("advice")
			for k, v := range tt.wantAdvice {
				if a[k] != v {
					t.Errorf("advice = %v; want %s = %v", a, k, v)
				}
			}
			if tt.successful && a.Str("reconnect") != "retry" {
				t.Errorf("advice = %v; want reconnect retry", a)
			}
		})
	}
}

// #44 #45 #46: sessions expire after maxInterval without a connect, but
// never while a connect is held.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	expiring := func(c *config.Config) {
		c.Bayeux.MaxInterval = config.Duration(400 * time.Millisecond)
		c.Bayeux.SweepPeriod = config.Duration(50 * time.Millisecond)
	}
	gone := func(t *testing.T, srv *gatewaytest.Server, c *client) {
		t.Helper()
		id := c.ClientID
		gatewaytest.Eventually(t, 5*time.Second, func() error {
			if srv.Engine().Session(id) != nil {
				return fmt.Errorf("session %s still alive", id)
			}
			return nil
		})
		r, _ := c.connect(nil)
		wantFailure(t, r, "402::session_unknown")
		if got := r.Obj("advice").Str("reconnect"); got != "handshake" {
			t.Errorf("advice.reconnect = %q; want handshake", got)
		}
	}
	t.Run("no connect after handshake", func(t *testing.T) { // #44
		t.Parallel()
		srv := newServer(t, shortT, expiring)
		c := newClient(t, srv)
		c.handshake(nil)
		gone(t, srv, c)
	})
	t.Run("no connect after a connect reply", func(t *testing.T) { // #45
		t.Parallel()
		srv := newServer(t, shortT, expiring)
		c := newClient(t, srv).connected()
		gone(t, srv, c)
	})
	t.Run("held longer than maxInterval", func(t *testing.T) { // #46
		t.Parallel()
		srv := newServer(t, 1500*time.Millisecond, expiring)
		c := newClient(t, srv).connected()
		start := time.Now()
		r, _ := c.connect(nil)
		wantSuccess(t, r)
		if time.Since(start) < time.Second {
			t.Fatalf("connect answered after %v; want it held past maxInterval", time.Since(start))
		}
		if srv.Engine().Session(c.ClientID) == nil {
			t.Fatal("session expired while its connect was held")
		}
		r, _ = c.connect(M{"advice": M{"timeout": 0}})
		wantSuccess(t, r)
	})
}

// #47: a server-side disconnect answers the held connect with a
// /meta/disconnect message and reconnect "none". Several sessions at once,
// since the wake-up races with the session's removal.
func TestServerSideDisconnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	const n = 8
	var clients []*client
	var held []<-chan result
	for range n {
		c := newClient(t, srv).connected()
		clients = append(clients, c)
		held = append(held, c.asyncConnect(nil))
	}
	assertAllHeld(t, held)
	for _, c := range clients {
		s := srv.Engine().Session(c.ClientID)
		if s == nil {
			t.Fatal("session not found")
		}
		s.Disconnect()
	}
	for _, h := range held {
		res := await(t, h, prompt)
		if got := res.reply(t, "/meta/connect").Obj("advice").Str("reconnect"); got != "none" {
			t.Errorf("connect advice.reconnect = %q; want none (%v)", got, res.msgs)
		}
		i := indexOf(res.msgs, onChannel("/meta/disconnect"))
		if i < 0 || !res.msgs[i].Successful() {
			t.Errorf("response %v; want a successful /meta/disconnect message", res.msgs)
		}
	}
}

// ---------------------------------------------------------------------------
// D. Subscribe / unsubscribe

// #48-#54 #62 #66: subscribe replies.
func TestSubscribeReplies(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	const absent = "<absent>"
	tests := []struct {
		name         string
		subscription any // absent: no field
		clientID     string
		wantErr      string // "" for success
	}{
		{name: "single", subscription: "/foo"},                                                                           // #48
		{name: "array", subscription: []any{"/a", "/b"}},                                                                 // #49
		{name: "missing", subscription: absent, wantErr: "403::subscription_missing"},                                    // #50
		{name: "invalid name", subscription: "/bar<script>", wantErr: "403::subscription_invalid"},                       // #51
		{name: "number", subscription: 42.0, wantErr: "403::subscription_invalid"},                                       // #52
		{name: "meta channel", subscription: "/meta/connect", wantErr: "403:denied_by_security_policy:subscribe_denied"}, // #53
		{name: "meta wildcard", subscription: "/meta/**", wantErr: "403:denied_by_security_policy:create_denied"},        // #54
		{name: "unknown session", subscription: "/foo", clientID: "nosuchclient", wantErr: "402::session_unknown"},       // #62
		{name: "mid-path wildcard", subscription: "/a/*/b", wantErr: "403::subscription_invalid"},                        // #66
		{name: "empty segment", subscription: "/a//b", wantErr: "403::subscription_invalid"},                             // #66
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv).connected()
			if tt.clientID != "" {
				c.ClientID = tt.clientID
			}
			fields := M{"subscription": tt.subscription, "id": "s1"}
			if tt.subscription == absent {
				fields["subscription"] = nil
			}
			r, _ := c.call("/meta/subscribe", fields)
			if r["id"] != "s1" {
				t.Errorf("reply id = %v; want s1", r["id"])
			}
			if tt.wantErr != "" {
				wantFailure(t, r, tt.wantErr)
				if tt.clientID != "" && r.Has("advice") { // #62: no advice
					t.Errorf("reply %v; want no advice", r)
				}
				return
			}
			wantSuccess(t, r)
			if !reflect.DeepEqual(r["subscription"], tt.subscription) { // #48 #49: echoed, same type
				t.Errorf("subscription = %#v; want %#v", r["subscription"], tt.subscription)
			}
		})
	}
}

// #55-#61 #63 #74: which publishes a subscriber receives. Each case
// subscribes a receiver, lets a sender publish to the listed channels and
// then to a marker, and compares the channels delivered before the marker.
func TestSubscriptionDelivery(t *testing.T) {
	t.Parallel()
	const marker = "/zz/marker"
	tests := []struct {
		name      string
		subscribe []any    // subscribe calls, in order; each must succeed unless failing lists it
		failing   []any    // subscribe calls expected to fail
		unsub     []string // unsubscribed after subscribing
		publish   []string
		want      []string
	}{
		{name: "service channel", subscribe: []any{"/service/echo"}, publish: []string{"/service/echo"}, want: nil},                                             // #55 #74
		{name: "one-segment wildcard", subscribe: []any{"/foo/*"}, publish: []string{"/foo/bar", "/foo/bar/baz", "/foo"}, want: []string{"/foo/bar"}},           // #56
		{name: "deep wildcard", subscribe: []any{"/foo/**"}, publish: []string{"/foo/bar", "/foo/bar/baz", "/foo"}, want: []string{"/foo/bar", "/foo/bar/baz"}}, // #57
		{name: "root deep wildcard", subscribe: []any{"/**"}, publish: []string{"/x/y", "/service/echo"}, want: []string{"/x/y"}},                               // #58
		{name: "overlapping subscriptions", subscribe: []any{"/foo/*", "/foo/bar"}, publish: []string{"/foo/bar"}, want: []string{"/foo/bar"}},                  // #59
		{name: "subscribed twice", subscribe: []any{"/foo", "/foo"}, publish: []string{"/foo"}, want: []string{"/foo"}},                                         // #60
		{name: "partial failure keeps earlier", failing: []any{[]any{"/ok", "/meta/x"}}, publish: []string{"/ok"}, want: []string{"/ok"}},                       // #61
		{name: "unsubscribed", subscribe: []any{"/foo"}, unsub: []string{"/foo"}, publish: []string{"/foo"}, want: nil},                                         // #63
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, longT, nil)
			sender := newClient(t, srv).connected()
			recv := newClient(t, srv).connected()
			for _, s := range tt.subscribe {
				if r := recv.subscribe(s); !r.Successful() {
					t.Fatalf("subscribe %v: %v", s, r)
				}
			}
			for _, s := range tt.failing {
				if r := recv.subscribe(s); r.Successful() {
					t.Fatalf("subscribe %v: %v; want a failure", s, r)
				}
			}
			for _, s := range tt.unsub {
				r, _ := recv.call("/meta/unsubscribe", M{"subscription": s})
				wantSuccess(t, r)
				if r["subscription"] != s {
					t.Errorf("unsubscribe reply subscription = %v; want %s", r["subscription"], s)
				}
			}
			recv.mustSubscribe(marker)
			for _, ch := range tt.publish {
				r, _ := sender.publish(ch, "x", nil)
				wantSuccess(t, r)
			}
			sender.mustPublish(marker, "end")
			events := recv.eventsUntil(marker, nil)
			got := channelsOf(events[:len(events)-1])
			if !slices.Equal(got, tt.want) {
				t.Errorf("delivered %v; want %v", got, tt.want)
			}
		})
	}
}

// #64 #65: unsubscribe replies.
func TestUnsubscribeReplies(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	keeper := newClient(t, srv).connected()
	keeper.mustSubscribe("/existing")           // keeps the channel from being swept
	t.Run("never created", func(t *testing.T) { // #64
		t.Parallel()
		c := newClient(t, srv).connected()
		r, _ := c.call("/meta/unsubscribe", M{"subscription": "/never-created"})
		wantFailure(t, r, "400::channel_missing")
	})
	t.Run("existing, not subscribed", func(t *testing.T) { // #65
		t.Parallel()
		c := newClient(t, srv).connected()
		r, _ := c.call("/meta/unsubscribe", M{"subscription": "/existing"})
		wantSuccess(t, r)
	})
}

// #68: a policy denial with its own reason.
func TestSubscribeDeniedWithReason(t *testing.T) {
	t.Parallel()
	vip := &bayeux.Error{Code: 403, Args: "vip_only", Message: "subscribe_denied"}
	srv := newServer(t, longT, nil, withPolicy(policy{subscribe: map[string]error{"/vip": vip}}))
	c := newClient(t, srv).connected()
	wantFailure(t, c.subscribe("/vip"), "403:vip_only:subscribe_denied")
	wantSuccess(t, c.subscribe("/public"))
}

// ---------------------------------------------------------------------------
// E. Publish

// #69 #72 #73: the publish ack, and the delivered copy: no id, no clientId,
// ext forwarded.
func TestPublishAckAndDelivery(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/foo")
	r, _ := a.publish("/foo", M{"x": 1}, M{"id": "7", "ext": M{"k": "v"}})
	wantSuccess(t, r)
	if r.Channel() != "/foo" || r["id"] != "7" || r.Has("data") || r.Has("clientId") { // #69
		t.Errorf("ack %v; want {channel:/foo, successful:true, id:7} without data or clientId", r)
	}
	events := b.eventsUntil("/foo", nil)
	ev := events[len(events)-1]
	if !reflect.DeepEqual(ev["data"], map[string]any{"x": 1.0}) { // #72
		t.Errorf("event data = %v; want {x:1}", ev["data"])
	}
	if ev.Has("clientId") || ev.Has("id") { // #72
		t.Errorf("event %v leaks clientId or id", ev)
	}
	if ev.Obj("ext").Str("k") != "v" { // #73
		t.Errorf("event ext = %v; want k:v forwarded", ev["ext"])
	}
}

// #70 #71: broadcast to the publisher.
func TestBroadcastToPublisher(t *testing.T) {
	t.Parallel()
	for _, toPublisher := range []bool{true, false} {
		t.Run(fmt.Sprint(toPublisher), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, longT, func(c *config.Config) { c.Bayeux.BroadcastToPublisher = config.Bool(toPublisher) })
			a := newClient(t, srv).connected()
			b := newClient(t, srv).connected()
			a.mustSubscribe("/foo", "/marker")
			b.mustSubscribe("/foo", "/marker")
			r, msgs := a.publish("/foo", "self", nil)
			wantSuccess(t, r)
			newClient(t, srv).connected().mustPublish("/marker", "end")
			aGot := channelsOf(a.eventsUntil("/marker", msgs))
			bGot := channelsOf(b.eventsUntil("/marker", nil))
			if got := slices.Contains(aGot, "/foo"); got != toPublisher {
				t.Errorf("publisher got its own event: %v (events %v); want %v", got, aGot, toPublisher)
			}
			if !slices.Contains(bGot, "/foo") {
				t.Errorf("other subscriber's events %v; want /foo", bGot)
			}
		})
	}
}

// #75: the demo echo service answers the caller on the same channel with
// the same id and data.
func TestServiceEcho(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	r, msgs := c.publish("/service/echo", M{"hello": "x"}, M{"id": "42"})
	wantSuccess(t, r)
	if r.Has("data") {
		t.Errorf("ack %v carries data", r)
	}
	events := c.eventsUntil("/service/echo", msgs)
	ev := events[len(events)-1]
	if ev["id"] != "42" || !reflect.DeepEqual(ev["data"], map[string]any{"hello": "x"}) {
		t.Errorf("echo %v; want id 42 and data {hello:x}", ev)
	}
}

// #76-#84: publish replies.
func TestPublishReplies(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	tests := []struct {
		name    string
		channel string
		fields  M
		wantErr string // "" for success
		wantID  any    // expected reply id, nil: not checked
	}{
		{name: "meta channel", channel: "/meta/foo", wantErr: "403:denied_by_security_policy:channel_create_denied"}, // #76
		// #77 Deliberate deviation: CometD accepts a remote publish to a
		// wildcard channel; Cometgate rejects it as the digest recommends.
		{name: "wildcard channel", channel: "/foo/*", wantErr: "405::channel_invalid"},
		{name: "deep wildcard channel", channel: "/foo/**", wantErr: "405::channel_invalid"},
		{name: "invalid characters", channel: "/foo<>", wantErr: "405::channel_invalid"},                    // #78
		{name: "root", channel: "/", wantErr: "405::channel_invalid"},                                       // #79
		{name: "no channel", channel: "", fields: M{"channel": nil}, wantErr: "400::channel_missing"},       // #80
		{name: "no clientId", channel: "/foo", fields: M{"clientId": nil}, wantErr: "402::session_unknown"}, // #81
		{name: "invalid id", channel: "/foo", fields: M{"id": "a-b"}, wantErr: "405::message_id_invalid"},   // #82
		{name: "numeric id", channel: "/foo", fields: M{"id": 7}, wantID: "7"},                              // #83
		{name: "no data", channel: "/foo", fields: M{"data": nil}},                                          // #84
		{name: "service channel", channel: "/service/echo"},                                                 // #74
		// Deliberate deviation: CometD acknowledges a publish to a service
		// channel that nothing serves; Cometgate answers it at once, as a
		// remote call that nothing would ever answer.
		{name: "unserved service channel", channel: "/service/nobody", wantErr: "404::service_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv).connected()
			f := M{"data": "x"}
			for k, v := range tt.fields {
				f[k] = v
			}
			m := c.NewMessage(tt.channel, f)
			msgs, _, err := c.Send(c.ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			replies := slices.DeleteFunc(slices.Clone(msgs), func(m M) bool { return !m.IsReply() })
			if len(replies) != 1 {
				t.Fatalf("response %v; want exactly one reply", msgs)
			}
			r := replies[0]
			if tt.wantErr != "" {
				wantFailure(t, r, tt.wantErr)
			} else {
				wantSuccess(t, r)
			}
			if tt.wantID != nil && r["id"] != tt.wantID {
				t.Errorf("reply id = %#v; want %#v", r["id"], tt.wantID)
			}
		})
	}
}

// #85: a publisher subscribed to its channel gets the event in the publish
// response, before the ack, and its held connect stays held.
func TestPublishPiggybacksOwnEvent(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	a.mustSubscribe("/foo")
	held := a.asyncConnect(nil)
	assertHeld(t, held)
	r, msgs := a.publish("/foo", "mine", nil)
	wantSuccess(t, r)
	ev := indexOf(msgs, onChannel("/foo"))
	if ev < 0 || !reflect.DeepEqual(channelsOf(msgs), []string{"/foo", "/foo"}) || msgs[ev].IsReply() {
		t.Errorf("publish response %v; want [event, ack]", msgs)
	}
	assertHeld(t, held)
}

// #86: with metaConnectDeliverOnly the event waits for a connect.
func TestMetaConnectDeliverOnly(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Bayeux.MetaConnectDeliverOnly = true })
	a := newClient(t, srv).connected()
	a.mustSubscribe("/foo")
	r, msgs := a.publish("/foo", "mine", nil)
	wantSuccess(t, r)
	if len(msgs) != 1 {
		t.Errorf("publish response %v; want the ack alone", msgs)
	}
	res := await(t, a.asyncConnect(nil), prompt)
	if indexOf(res.msgs, func(m M) bool { return m.Channel() == "/foo" && m["data"] == "mine" }) < 0 {
		t.Errorf("connect response %v; want the /foo event", res.msgs)
	}
}

// #87 #88: publishes refused by the policy or by a publish handler.
func TestPublishRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil, withPolicy(policy{publish: map[string]error{"/readonly": engine.ErrDenied}}))
	if err := srv.Engine().HandlePublish("/guarded", func(context.Context, *engine.Session, *bayeux.Message) error {
		return errors.New("vetoed")
	}); err != nil {
		t.Fatal(err)
	}
	a := newClient(t, srv).connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/readonly", "/guarded", "/marker")
	r, _ := a.publish("/readonly", 1, nil)
	wantFailure(t, r, "403:denied_by_security_policy:publish_denied") // #87
	r, _ = a.publish("/guarded", 1, nil)
	wantFailure(t, r, "404::message_deleted") // #88
	a.mustPublish("/marker", "end")
	if got := channelsOf(b.eventsUntil("/marker", nil)); !slices.Equal(got, []string{"/marker"}) {
		t.Errorf("subscriber got %v; want only the marker", got)
	}
}

// #89: several publishes in one request: replies and deliveries in order.
func TestPublishOrder(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/order")
	var batch []M
	for i := 1; i <= 3; i++ {
		batch = append(batch, a.NewMessage("/order", M{"id": fmt.Sprint("p", i), "data": i}))
	}
	msgs, _, err := a.Send(a.ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	var ids []any
	for _, m := range msgs {
		wantSuccess(t, m)
		ids = append(ids, m["id"])
	}
	if !reflect.DeepEqual(ids, []any{"p1", "p2", "p3"}) {
		t.Errorf("reply ids %v; want [p1 p2 p3]", ids)
	}
	var data []any
	for len(data) < 3 {
		r, msgs := b.connect(nil)
		wantSuccess(t, r)
		for _, ev := range gatewaytest.Events(msgs) {
			data = append(data, ev["data"])
		}
	}
	if !reflect.DeepEqual(data, []any{1.0, 2.0, 3.0}) {
		t.Errorf("delivered %v; want [1 2 3]", data)
	}
}

// ---------------------------------------------------------------------------
// F. Disconnect

// #90 #91 #92
func TestDisconnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	r, _ := c.call("/meta/disconnect", M{"id": "d1"})
	wantSuccess(t, r) // #90
	if r.Channel() != "/meta/disconnect" || r["id"] != "d1" {
		t.Errorf("reply %v; want channel /meta/disconnect, id d1", r)
	}
	r, _ = c.connect(nil) // #91
	wantFailure(t, r, "402::session_unknown")
	if got := r.Obj("advice").Str("reconnect"); got != "handshake" {
		t.Errorf("advice.reconnect = %q; want handshake", got)
	}
	r, _ = c.call("/meta/disconnect", nil) // #92
	wantFailure(t, r, "402::session_unknown")
}

// ---------------------------------------------------------------------------
// G. callback-polling (JSONP)

// jsonpCall sends one message over callback-polling and returns its reply
// and the whole response.
func (c *client) jsonpCall(channel string, fields M) (M, []M) {
	c.t.Helper()
	m := c.NewMessage(channel, fields)
	msgs, _, err := c.JSONP(c.ctx, "cb", []M{m})
	if err != nil {
		c.t.Fatal(err)
	}
	r, ok := gatewaytest.FindReply(msgs, channel, m.Str("id"))
	if !ok {
		c.t.Fatalf("no %s reply in %v", channel, msgs)
	}
	return r, msgs
}

// jsonpConnected handshakes and connects over callback-polling.
func (c *client) jsonpConnected() *client {
	c.t.Helper()
	r, _ := c.jsonpCall("/meta/handshake", M{"version": "1.0", "supportedConnectionTypes": []string{"callback-polling"}})
	wantSuccess(c.t, r)
	c.ClientID = r.Str("clientId")
	r, _ = c.jsonpCall("/meta/connect", M{"connectionType": "callback-polling"})
	wantSuccess(c.t, r)
	return c
}

// #93: the JSONP response shape.
func TestJSONPResponse(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	c.URL = srv.URL + "/handshake"
	hs := `[{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["callback-polling"]}]`
	resp, body, err := c.Get(c.ctx, url.Values{"jsonp": {"cb"}, "message": {hs}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d (%q); want 200", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript;charset=UTF-8" {
		t.Errorf("Content-Type = %q; want text/javascript;charset=UTF-8", ct)
	}
	if !regexp.MustCompile(`(?s)^cb\(\[.*\]\)$`).Match(body) {
		t.Fatalf("body %q; want cb([...])", body)
	}
	msgs, err := decode(body[3 : len(body)-1])
	if err != nil || len(msgs) != 1 || !msgs[0].Successful() {
		t.Errorf("body %q: want one successful handshake reply (err %v)", body, err)
	}
}

// #94 #95: requests no transport accepts.
func TestJSONPRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	hs := `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["callback-polling"]}]`
	tests := []struct {
		name  string
		query url.Values
	}{
		{name: "illegal callback", query: url.Values{"jsonp": {"alert(1)"}, "message": {hs}}},              // #94
		{name: "65-char callback", query: url.Values{"jsonp": {strings.Repeat("c", 65)}, "message": {hs}}}, // #94
		{name: "two callbacks", query: url.Values{"jsonp": {"a", "b"}, "message": {hs}}},
		// #95 Deliberate deviation: CometD answers 500, Cometgate 400.
		{name: "no message", query: url.Values{"jsonp": {"cb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			resp, body, err := c.Get(c.ctx, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 {
				t.Errorf("GET ?%s = %d (%q); want 400", tt.query.Encode(), resp.StatusCode, body)
			}
		})
	}
	t.Run("64-char callback accepted", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, srv)
		cb := strings.Repeat("c", 64)
		msgs, _, err := c.JSONP(c.ctx, cb, []M{c.NewMessage("/meta/handshake", M{"version": "1.0"})})
		if err != nil || len(msgs) != 1 || !msgs[0].Successful() {
			t.Errorf("64-char callback: %v, %v; want a successful handshake", msgs, err)
		}
	})
}

// #96: repeated message parameters are all processed.
func TestJSONPRepeatedMessage(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).jsonpConnected()
	p1 := c.NewMessage("/j/one", M{"data": 1})
	p2 := c.NewMessage("/j/two", M{"data": 2})
	msgs, _, err := c.JSONP(c.ctx, "cb", []M{p1}, []M{p2})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !msgs[0].Successful() || !msgs[1].Successful() ||
		msgs[0]["id"] != p1["id"] || msgs[1]["id"] != p2["id"] {
		t.Errorf("response %v; want two successful replies, in order", msgs)
	}
}

// #97: callback-polling events travel only with connect replies.
func TestJSONPEventsOnlyOnConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).jsonpConnected()
	r, _ := c.jsonpCall("/meta/subscribe", M{"subscription": "/t"})
	wantSuccess(t, r)
	r, msgs := c.jsonpCall("/t", M{"data": "own"})
	wantSuccess(t, r)
	if len(msgs) != 1 {
		t.Errorf("publish response %v; want the ack alone", msgs)
	}
	start := time.Now()
	r, msgs = c.jsonpCall("/meta/connect", M{"connectionType": "callback-polling"})
	wantSuccess(t, r)
	if time.Since(start) > prompt {
		t.Errorf("connect with a queued event answered after %v; want at once", time.Since(start))
	}
	if indexOf(msgs, func(m M) bool { return m.Channel() == "/t" && m["data"] == "own" }) < 0 {
		t.Errorf("connect response %v; want the /t event", msgs)
	}
}

// ---------------------------------------------------------------------------
// H. WebSocket

func dial(t testing.TB, srv *gatewaytest.Server) *gatewaytest.WSClient {
	t.Helper()
	w, resp, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", srv.WSURL, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d; want 101", resp.StatusCode)
	}
	t.Cleanup(w.Close)
	return w
}

func wsCall(t testing.TB, w *gatewaytest.WSClient, channel string, fields M) (M, [][]M) {
	t.Helper()
	r, frames, err := w.Call(prompt, channel, fields)
	if err != nil {
		t.Fatalf("%s over websocket: %v", channel, err)
	}
	return r, frames
}

// wsConnected handshakes and sends the first connect.
func wsConnected(t testing.TB, srv *gatewaytest.Server) *gatewaytest.WSClient {
	t.Helper()
	w := dial(t, srv)
	r, _, err := w.Handshake(prompt, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSuccess(t, r)
	r, _ = wsCall(t, w, "/meta/connect", M{"connectionType": "websocket"})
	wantSuccess(t, r)
	return w
}

// #98 #100 #101: upgrade without subprotocol; the handshake reply arrives
// alone in its frame. (#100: every frame is checked to be a JSON array by
// the test client.)
func TestWebSocketHandshake(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	w := dial(t, srv)
	r, frames, err := w.Handshake(prompt, M{"id": "h1"})
	if err != nil {
		t.Fatal(err)
	}
	wantSuccess(t, r)
	if r["id"] != "h1" || !alnum.MatchString(r.Str("clientId")) {
		t.Errorf("handshake reply %v; want id h1 and a clientId", r)
	}
	if len(frames) != 1 || len(frames[0]) != 1 {
		t.Errorf("frames %v; want the handshake reply alone in one frame", frames)
	}
}

// #99: a server requiring a subprotocol refuses clients that offer none.
func TestWebSocketSubprotocol(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Transports.WebSocket.Subprotocol = "bayeux/1.0" })
	ctx := gatewaytest.Context(t)
	w, resp, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil)
	if err == nil {
		w.Close()
		t.Fatal("upgrade without subprotocol succeeded; want it refused")
	}
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("upgrade without subprotocol: resp %v err %v; want an HTTP error", resp, err)
	}
	w, _, err = gatewaytest.DialWebSocket(ctx, srv.WSURL, http.Header{"Sec-WebSocket-Protocol": {"bayeux/1.0"}})
	if err != nil {
		t.Fatalf("upgrade offering bayeux/1.0: %v", err)
	}
	defer w.Close()
	if p := w.Conn.Subprotocol(); p != "bayeux/1.0" {
		t.Errorf("negotiated subprotocol %q; want bayeux/1.0", p)
	}
}

// #102: over websocket events are pushed in their own frames while the
// connect stays held.
func TestWebSocketPushWhileHeld(t *testing.T) {
	t.Parallel()
	srv := newServer(t, shortT, nil)
	b := wsConnected(t, srv)
	r, _ := wsCall(t, b, "/meta/subscribe", M{"subscription": "/t"})
	wantSuccess(t, r)
	c2 := b.NewMessage("/meta/connect", M{"connectionType": "websocket"})
	start := time.Now()
	if err := b.Send(c2); err != nil {
		t.Fatal(err)
	}
	a := newClient(t, srv).connected()
	a.mustPublish("/t", "pushed")
	frames, err := b.ReadUntil(prompt, onChannel("/t"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if indexOf(f, onChannel("/meta/connect")) >= 0 {
			t.Fatalf("frames %v: the held connect was answered with the event", frames)
		}
	}
	if time.Since(start) >= shortT*9/10 {
		t.Fatalf("event arrived after %v; want it before the hold timeout", time.Since(start))
	}
	frames, err = b.ReadUntil(shortT+prompt, isReplyOn("/meta/connect"))
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < shortT*9/10 {
		t.Errorf("connect answered after %v; want it held for about %v", elapsed, shortT)
	}
	last := frames[len(frames)-1]
	if r := last[indexOf(last, isReplyOn("/meta/connect"))]; r["id"] != c2["id"] || !r.Successful() {
		t.Errorf("connect reply %v; want a successful reply to %v", r, c2["id"])
	}
}

// #103 #104 and the frame limit: frames the server cannot process close the
// connection with a code.
func TestWebSocketBadFrames(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Limits.MaxRequestBytes = 1024 })
	hs := `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}`
	tests := []struct {
		name  string
		frame string
		code  int
	}{
		{name: "bad JSON", frame: `[{"channel":`, code: websocket.CloseInternalServerErr},                                                     // #103
		{name: "handshake with publish", frame: "[" + hs + `,{"channel":"/x","data":1}]`, code: websocket.CloseInternalServerErr},             // #104
		{name: "frame too large", frame: `[{"channel":"/x","data":"` + strings.Repeat("x", 2048) + `"}]`, code: websocket.CloseMessageTooBig}, // deliberate: 1009
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := dial(t, srv)
			if err := w.SendRaw([]byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			code, err := w.WaitClose(prompt)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("close code %d; want %d", code, tt.code)
			}
		})
	}
	// Deliberate deviation: CometD closes on an empty array; Cometgate
	// ignores it (Faye clients send [] as a keep-alive).
	t.Run("empty array ignored", func(t *testing.T) {
		t.Parallel()
		w := dial(t, srv)
		if err := w.SendRaw([]byte("[]")); err != nil {
			t.Fatal(err)
		}
		r, _, err := w.Handshake(prompt, nil)
		if err != nil {
			t.Fatalf("handshake after []: %v", err)
		}
		wantSuccess(t, r)
	})
}

// #105: a connection bound to one session refuses another session's id.
func TestWebSocketOtherSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	w1 := wsConnected(t, srv)
	w2 := wsConnected(t, srv)
	r, _ := wsCall(t, w1, "/meta/subscribe", M{"subscription": "/x", "clientId": w2.ClientID})
	wantFailure(t, r, "402::session_unknown")
	r, _ = wsCall(t, w1, "/meta/connect", M{"connectionType": "websocket", "clientId": w2.ClientID, "advice": M{"timeout": 0}})
	wantFailure(t, r, "402::session_unknown")
}

// #106: a new connection resumes a session by its clientId, from the
// same browser (the cookie the first upgrade set).
func TestWebSocketReconnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	w := wsConnected(t, srv)
	id := w.ClientID
	w.Close()
	w2, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, w.CookieHeader())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w2.Close)
	w2.ClientID = id
	r, _ := wsCall(t, w2, "/meta/connect", M{"connectionType": "websocket", "advice": M{"timeout": 0}})
	wantSuccess(t, r)
	r, _ = wsCall(t, w2, "/meta/subscribe", M{"subscription": "/resumed"})
	wantSuccess(t, r)
}

// #107: a second connect on the same connection replaces the held one,
// which is never answered.
func TestWebSocketDuplicateConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, shortT, nil)
	w := wsConnected(t, srv)
	c2 := w.NewMessage("/meta/connect", M{"connectionType": "websocket"})
	if err := w.Send(c2); err != nil {
		t.Fatal(err)
	}
	if msgs, err := w.Read(holdProbe); !errors.Is(err, gatewaytest.ErrNoFrame) {
		t.Fatalf("read after c2: %v, %v; want nothing (held)", msgs, err)
	}
	c3 := w.NewMessage("/meta/connect", M{"connectionType": "websocket"})
	start := time.Now()
	if err := w.Send(c3); err != nil {
		t.Fatal(err)
	}
	frames, err := w.ReadUntil(shortT+prompt, isReplyOn("/meta/connect"))
	if err != nil {
		t.Fatal(err)
	}
	last := frames[len(frames)-1]
	if r := last[indexOf(last, isReplyOn("/meta/connect"))]; r["id"] != c3["id"] {
		t.Errorf("connect reply %v; want the reply to c3 (%v), c2 (%v) never answered", r, c3["id"], c2["id"])
	}
	if elapsed := time.Since(start); elapsed < shortT*9/10 {
		t.Errorf("c3 answered after %v; want it held for about %v", elapsed, shortT)
	}
	if msgs, err := w.Read(holdProbe); !errors.Is(err, gatewaytest.ErrNoFrame) {
		t.Errorf("after c3's reply: %v, %v; want nothing (c2 never answered)", msgs, err)
	}
}

// #108: with messagesPerFrame 1, queued events go one per frame.
func TestWebSocketMessagesPerFrame(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Transports.WebSocket.MessagesPerFrame = 1 })
	b := wsConnected(t, srv)
	r, _ := wsCall(t, b, "/meta/subscribe", M{"subscription": "/t"})
	wantSuccess(t, r)
	if err := b.Send(b.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	a := newClient(t, srv).connected()
	var batch []M
	for i := range 3 {
		batch = append(batch, a.NewMessage("/t", M{"data": i}))
	}
	if _, _, err := a.Send(a.ctx, batch...); err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < 3 {
		msgs, err := b.Read(prompt)
		if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
		if len(msgs) != 1 {
			t.Errorf("frame %v; want one message per frame", msgs)
		}
		n += len(gatewaytest.Events(msgs))
	}
}

// #108: an immediate connect reply respects messagesPerFrame too. With the
// ack extension, events travel only with connects: each connect answered
// at once (advice.timeout 0) carries at most one event next to its reply
// when frames hold two messages, and the events all arrive, in order.
func TestWebSocketMessagesPerFrameImmediateConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, func(c *config.Config) { c.Transports.WebSocket.MessagesPerFrame = 2 })
	b := dial(t, srv)
	r, _, err := b.Handshake(prompt, M{"ext": M{"ack": true}})
	if err != nil {
		t.Fatal(err)
	}
	wantSuccess(t, r)
	r, _ = wsCall(t, b, "/meta/subscribe", M{"subscription": "/t"})
	wantSuccess(t, r)
	a := newClient(t, srv).connected()
	var batch []M
	for i := range 3 {
		batch = append(batch, a.NewMessage("/t", M{"data": i}))
	}
	if _, _, err := a.Send(a.ctx, batch...); err != nil {
		t.Fatal(err)
	}
	var got []any
	ack := int64(0) // the last batch received
	for try := 0; len(got) < 3; try++ {
		if try == 6 {
			t.Fatalf("after 6 connects, events %v; want 3", got)
		}
		r, frames := wsCall(t, b, "/meta/connect", M{"connectionType": "websocket", "advice": M{"timeout": 0}, "ext": M{"ack": ack}})
		wantSuccess(t, r)
		ack = extAck(t, r)
		for _, f := range frames {
			if len(f) > 2 {
				t.Errorf("frame of %d messages %v; want at most 2", len(f), f)
			}
			for _, ev := range gatewaytest.Events(f) {
				got = append(got, ev["data"])
			}
		}
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("events %v; want 0 1 2 in order", got)
	}
}

// ---------------------------------------------------------------------------
// I. Extensions

// extAck returns ext.ack of m as an integer, failing if it is not one.
func extAck(t testing.TB, m M) int64 {
	t.Helper()
	f, ok := m.Obj("ext")["ack"].(float64)
	if !ok || f != float64(int64(f)) {
		t.Fatalf("reply %v: ext.ack is not an integer", m)
	}
	return int64(f)
}

// #109 #110: ack handshake and increasing batch ids.
func TestAckBatchIDs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, shortT, nil)
	c := newClient(t, srv)
	r := c.handshake(M{"ext": M{"ack": true}})
	if r.Obj("ext")["ack"] != true { // #109
		t.Fatalf("handshake reply %v; want ext.ack true", r)
	}
	r, _ = c.connect(M{"ext": M{"ack": 0}})
	wantSuccess(t, r)
	prev := extAck(t, r)
	if prev < 1 {
		t.Errorf("first ext.ack %d; want >= 1", prev)
	}
	for range 2 {
		r, _ = c.connect(M{"ext": M{"ack": prev}})
		wantSuccess(t, r)
		if id := extAck(t, r); id <= prev {
			t.Errorf("ext.ack %d after %d; want strictly increasing", id, prev)
		} else {
			prev = id
		}
	}
}

// #111: events in a connect reply the client lost are sent again when the
// next connect acknowledges an older batch, and that connect is not held.
func TestAckRedelivery(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	b := newClient(t, srv)
	b.handshake(M{"ext": M{"ack": true}})
	r, _ := b.connect(M{"ext": M{"ack": 0}})
	acked := extAck(t, r)
	b.mustSubscribe("/acked")
	held := b.asyncConnect(M{"ext": M{"ack": acked}})
	assertHeld(t, held)
	a.mustPublish("/acked", "once")
	res := await(t, held, prompt)
	lost := res.reply(t, "/meta/connect")
	if indexOf(res.msgs, onChannel("/acked")) < 0 {
		t.Fatalf("connect response %v; want the /acked event", res.msgs)
	}
	lostID := extAck(t, lost)
	// The client "loses" that response and acknowledges the older batch.
	res = await(t, b.asyncConnect(M{"ext": M{"ack": acked}}), prompt)
	r = res.reply(t, "/meta/connect")
	wantSuccess(t, r)
	if indexOf(res.msgs, func(m M) bool { return m.Channel() == "/acked" && m["data"] == "once" }) < 0 {
		t.Errorf("connect response %v; want the lost /acked event again", res.msgs)
	}
	again := extAck(t, r)
	if again <= lostID {
		t.Errorf("ext.ack %d after %d; want a new batch id", again, lostID)
	}
	// Acknowledging the re-delivery leaves nothing pending: held again.
	assertHeld(t, b.asyncConnect(M{"ext": M{"ack": again}}))
}

// #112: an ack session gets events only in connect responses.
func TestAckEventsOnlyOnConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	c.handshake(M{"ext": M{"ack": true}})
	r, _ := c.connect(M{"ext": M{"ack": 0}})
	acked := extAck(t, r)
	c.mustSubscribe("/own")
	r, msgs := c.publish("/own", "mine", nil)
	wantSuccess(t, r)
	if len(msgs) != 1 {
		t.Errorf("publish response %v; want the ack alone", msgs)
	}
	res := await(t, c.asyncConnect(M{"ext": M{"ack": acked}}), prompt)
	if indexOf(res.msgs, onChannel("/own")) < 0 {
		t.Errorf("connect response %v; want the /own event", res.msgs)
	}
}

// #113 #114: timesync replies.
func TestTimesync(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv)
	tc := time.Now().UnixMilli()
	r := c.handshake(M{"ext": M{"timesync": M{"tc": tc, "l": 0, "o": 0}}})
	ts := r.Obj("ext").Obj("timesync") // #113
	for _, k := range []string{"tc", "ts", "p", "a"} {
		if _, ok := ts[k].(float64); !ok {
			t.Errorf("ext.timesync = %v; want number %s", ts, k)
		}
	}
	if ts["tc"] != float64(tc) {
		t.Errorf("ext.timesync.tc = %v; want %d echoed", ts["tc"], tc)
	}
	// #114: a client already accurate within 25ms gets no timesync. The
	// client and server share a clock, so a lag equal to the one-way delay
	// makes the offset error about 0; a loaded machine may need a few tries.
	lag := int64(0)
	for try := 0; ; try++ {
		tc := time.Now().UnixMilli()
		r, _ := c.connect(M{"advice": M{"timeout": 0}, "ext": M{"timesync": M{"tc": tc, "l": lag, "o": 0}}})
		ts := r.Obj("ext").Obj("timesync")
		if lag > 0 && ts == nil {
			break
		}
		if try == 10 {
			t.Fatalf("ext.timesync still sent to an accurate client: %v", r)
		}
		if ts != nil {
			p, _ := ts["p"].(float64)
			lag = max(1, (time.Now().UnixMilli()-tc-int64(p))/2)
		}
	}
}

// #115: with the timestamp extension, every message the server sends
// (replies, broadcasts, remote-call answers) has a top-level timestamp,
// one per broadcast; without it, none has.
func TestTimestampExtension(t *testing.T) {
	t.Parallel()
	stamped := func(m M) bool {
		ts, ok := m["timestamp"].(string)
		if !ok {
			return false
		}
		_, err := time.Parse(ext.TimestampLayout, ts)
		return err == nil
	}
	srv := newServer(t, longT, func(c *config.Config) { c.Extensions.Timestamp = config.Bool(true) })
	a := newClient(t, srv)
	hs := a.handshake(nil)
	if !stamped(hs) {
		t.Errorf("handshake reply %v; want a timestamp", hs)
	}
	a.connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/ts")
	// The client's own timestamp is accepted.
	r, _ := a.publish("/ts", M{"x": 1}, M{"timestamp": "Wed, 16 Dec 2009 23:45:28 GMT"})
	wantSuccess(t, r)
	if !stamped(r) {
		t.Errorf("publish reply %v; want a timestamp", r)
	}
	events := b.eventsUntil("/ts", nil)
	if ev := events[len(events)-1]; !stamped(ev) {
		t.Errorf("broadcast %v; want the server's timestamp", ev)
	}
	r, msgs := b.publish("/service/echo", M{"y": 2}, nil)
	wantSuccess(t, r)
	answer := b.eventsUntil("/service/echo", msgs)
	if ev := answer[len(answer)-1]; !stamped(ev) {
		t.Errorf("remote-call answer %v; want a timestamp", ev)
	}

	plain := newServer(t, longT, nil)
	c := newClient(t, plain)
	if hs := c.handshake(nil); hs["timestamp"] != nil {
		t.Errorf("handshake reply %v without the extension; want no timestamp", hs)
	}
}

// #116: binary extension messages pass through unchanged.
func TestBinaryPassThrough(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	a := newClient(t, srv).connected()
	b := newClient(t, srv).connected()
	b.mustSubscribe("/bin")
	data := M{"data": "HelloWorld", "last": true, "meta": M{}}
	r, _ := a.publish("/bin", data, M{"ext": M{"binary": M{}}})
	wantSuccess(t, r)
	events := b.eventsUntil("/bin", nil)
	ev := events[len(events)-1]
	if bin, ok := ev.Obj("ext")["binary"].(map[string]any); !ok || len(bin) != 0 {
		t.Errorf("event ext = %v; want binary:{}", ev["ext"])
	}
	if d := ev.Obj("data"); d.Str("data") != "HelloWorld" || d["last"] != true {
		t.Errorf("event data = %v; want the Z85 payload unchanged", ev["data"])
	}
}

// #117: unknown ext keys are ignored on every kind of message.
func TestUnknownExtIgnored(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	ext := M{"com.example.unknown": M{"x": 1}}
	c := newClient(t, srv)
	c.handshake(M{"ext": ext})
	steps := []struct {
		channel string
		fields  M
	}{
		{"/meta/connect", M{"connectionType": "long-polling"}},
		{"/meta/connect", M{"connectionType": "long-polling", "advice": M{"timeout": 0}}},
		{"/meta/subscribe", M{"subscription": "/u"}},
		{"/u", M{"data": 1}},
		{"/meta/unsubscribe", M{"subscription": "/u"}},
		{"/meta/disconnect", nil},
	}
	for _, s := range steps {
		f := M{"ext": ext}
		for k, v := range s.fields {
			f[k] = v
		}
		r, _ := c.call(s.channel, f)
		if !r.Successful() {
			t.Errorf("%s with an unknown ext key: %v; want success", s.channel, r)
		}
	}
}

// ---------------------------------------------------------------------------
// Shutdown

// Graceful shutdown answers held long polls with advice to re-handshake
// before Shutdown returns, and closes websockets with 1001.
func TestShutdownAnswersHeldConnects(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	c := newClient(t, srv).connected()
	held := c.asyncConnect(nil)
	assertHeld(t, held)
	w := wsConnected(t, srv)
	if err := w.Send(w.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	if msgs, err := w.Read(holdProbe); !errors.Is(err, gatewaytest.ErrNoFrame) {
		t.Fatalf("websocket connect: %v, %v; want it held", msgs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), prompt)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	res := await(t, held, prompt)
	r := res.reply(t, "/meta/connect")
	if got := r.Obj("advice").Str("reconnect"); got != "handshake" {
		t.Errorf("held long poll answered %v; want advice.reconnect handshake", r)
	}
	frames, err := w.ReadUntil(prompt, isReplyOn("/meta/connect"))
	if err != nil {
		t.Fatalf("websocket held connect: %v", err)
	}
	last := frames[len(frames)-1]
	if r := last[indexOf(last, isReplyOn("/meta/connect"))]; r.Obj("advice").Str("reconnect") != "handshake" {
		t.Errorf("websocket held connect answered %v; want advice.reconnect handshake", r)
	}
	if code, err := w.WaitClose(prompt); err != nil || code != websocket.CloseGoingAway {
		t.Errorf("websocket close: code %d, %v; want 1001", code, err)
	}
}
