package gateway_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/gorilla/websocket"
)

// wsSession dials with header, handshakes and holds a connect.
func wsSession(t *testing.T, srv *gatewaytest.Server, header http.Header) *gatewaytest.WSClient {
	t.Helper()
	w, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if r, _, err := w.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/bound"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	// The first connect is answered at once; the second is held.
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket"}); err != nil || !r.Successful() {
		t.Fatalf("connect: %v, %v", r, err)
	}
	if err := w.Send(w.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	return w
}

// takeOver dials a websocket with header and sends /meta/connect with
// clientID; it returns the reply.
func takeOver(t *testing.T, srv *gatewaytest.Server, header http.Header, clientID string) (*gatewaytest.WSClient, M) {
	t.Helper()
	w, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.ClientID = clientID
	r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket", "advice": M{"timeout": 0}})
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

// receives checks that w gets the next broadcast on /bound.
func receives(t *testing.T, srv *gatewaytest.Server, w *gatewaytest.WSClient, marker string) {
	t.Helper()
	pub := srv.Client()
	ctx := gatewaytest.Context(t)
	if r, _, err := pub.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("publisher: %v, %v", r, err)
	}
	if r, _, err := pub.Publish(ctx, "/bound", marker, nil); err != nil || !r.Successful() {
		t.Fatalf("publish: %v, %v", r, err)
	}
	if _, err := w.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/bound" && m["data"] == marker }); err != nil {
		t.Fatalf("%s not delivered: %v", marker, err)
	}
}

// A clientId alone never takes over a session over websocket (issue 8.3):
// the new connection must carry the browser's cookie, whether the session
// was handshaken over websocket or long-polling.
func TestWebSocketSessionBoundToBrowser(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	ctx := gatewaytest.Context(t)

	victim := wsSession(t, srv, nil)
	if len(victim.Cookies) != 1 || victim.Cookies[0].Name != "BAYEUX_BROWSER" || victim.Cookies[0].Value == "" {
		t.Fatalf("upgrade response cookies = %v; want BAYEUX_BROWSER", victim.Cookies)
	}
	// An upgrade that carries the cookie gets no new one.
	again, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, victim.CookieHeader())
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if len(again.Cookies) != 0 {
		t.Errorf("upgrade with a cookie set %v; want none", again.Cookies)
	}

	for _, h := range []http.Header{nil, {"Cookie": {"BAYEUX_BROWSER=guess"}}} {
		_, r := takeOver(t, srv, h, victim.ClientID)
		if r.Successful() || r.Str("error") != "402::session_unknown" || r.Obj("advice").Str("reconnect") != "handshake" {
			t.Errorf("takeover with header %v: %v; want 402::session_unknown, reconnect handshake", h, r)
		}
	}
	receives(t, srv, victim, "victim-still-served")

	// A long-polling session (cookie bound over HTTP) is not reachable
	// from a websocket without its cookie either, once it has connected.
	lp := srv.Client()
	hs, _, err := lp.Handshake(ctx, nil)
	if err != nil || !hs.Successful() {
		t.Fatalf("long-polling handshake: %v, %v", hs, err)
	}
	if r, _, err := lp.Connect(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("long-polling connect: %v, %v", r, err)
	}
	_, r := takeOver(t, srv, nil, hs.Str("clientId"))
	if r.Successful() {
		t.Errorf("websocket takeover of a long-polling session succeeded: %v", r)
	}
	if r, _, err := lp.Subscribe(ctx, "/bound"); err != nil || !r.Successful() {
		t.Errorf("long-polling session no longer served: %v, %v", r, err)
	}
}

// A legitimate resume (same browser) moves the session, and the old
// connection is told: it is closed, never left blind.
func TestWebSocketResumeClosesOldConnection(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	old := wsSession(t, srv, nil)
	moved, r := takeOver(t, srv, old.CookieHeader(), old.ClientID)
	if !r.Successful() {
		t.Fatalf("resume with the browser's cookie: %v", r)
	}
	code, err := old.WaitClose(gatewaytest.DefaultTimeout)
	if err != nil {
		t.Fatalf("old connection: %v", err)
	}
	if code != websocket.CloseNormalClosure {
		t.Errorf("old connection closed with %d; want %d", code, websocket.CloseNormalClosure)
	}
	if err := moved.Send(moved.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	receives(t, srv, moved, "after-move")
}

// trustClientSession relaxes the binding; requireHandshakePerConnection
// forbids resuming even from the same browser.
func TestWebSocketSessionBindingSwitches(t *testing.T) {
	cases := []struct {
		name       string
		configure  func(*config.Config)
		withCookie bool
		want       bool
	}{
		{"trustClientSession", func(c *config.Config) { c.Bayeux.TrustClientSession = true }, false, true},
		{"requireHandshakePerConnection", func(c *config.Config) { c.Transports.WebSocket.RequireHandshakePerConnection = true }, true, false},
		{"default with cookie", func(*config.Config) {}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := gatewaytest.NewServer(t, func(c *config.Config) {
				c.Demo.Enabled = config.Bool(false)
				longSessions(c)
				tc.configure(c)
			})
			w := wsSession(t, srv, nil)
			var h http.Header
			if tc.withCookie {
				h = w.CookieHeader()
			}
			_, r := takeOver(t, srv, h, w.ClientID)
			if r.Successful() != tc.want {
				t.Errorf("resume: %v; want successful %v", r, tc.want)
			}
		})
	}
}

// A client that handshakes over HTTP while it opens its websocket (Faye,
// or any client on a first visit) sends both without a cookie and gets two
// browser ids: its websocket, which carried no cookie, may adopt the
// session until the session's first connect, and not after.
func TestWebSocketAdoptsSessionBeforeFirstConnect(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	ctx := gatewaytest.Context(t)
	lp := srv.Client()
	hs, _, err := lp.Handshake(ctx, nil)
	if err != nil || !hs.Successful() {
		t.Fatalf("handshake: %v, %v", hs, err)
	}
	// A cookie from another browser never adopts it.
	other := wsSession(t, srv, nil)
	if _, r := takeOver(t, srv, other.CookieHeader(), hs.Str("clientId")); r.Successful() {
		t.Errorf("a connection from another browser adopted a new session: %v", r)
	}
	w, r := takeOver(t, srv, nil, hs.Str("clientId"))
	if !r.Successful() {
		t.Fatalf("the client's own websocket (no cookie yet) could not adopt its new session: %v", r)
	}
	if r, _, err := w.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/bound"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe on the adopting connection: %v, %v", r, err)
	}
	// Connected now: a cookie-less connection is refused.
	if _, r := takeOver(t, srv, nil, hs.Str("clientId")); r.Successful() {
		t.Errorf("a cookie-less connection took a connected session: %v", r)
	}
}

// The same race seen from HTTP: the client keeps the cookie of the
// websocket's 101, which arrived after the handshake's, and long-polls with
// it. Before the session's first connect that new cookie becomes the
// session's second browser id; a cookie from an HTTP handshake never does,
// and after the first connect no other is taken.
func TestLongPollingAdoptsSessionBeforeFirstConnect(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
	})
	ctx := gatewaytest.Context(t)
	lp := srv.Client()
	hs, _, err := lp.Handshake(ctx, nil)
	if err != nil || !hs.Successful() {
		t.Fatalf("handshake: %v, %v", hs, err)
	}
	probe, _, err := gatewaytest.DialWebSocket(ctx, srv.WSURL, nil) // sets a second cookie
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	u, _ := url.Parse(srv.URL)
	lp.HTTP.Jar.SetCookies(u, probe.Cookies) // the 101's cookie arrived last
	if r, _, err := lp.Connect(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("connect with the websocket's cookie before the first connect: %v, %v", r, err)
	}
	if r, _, err := lp.Subscribe(ctx, "/bound"); err != nil || !r.Successful() {
		t.Fatalf("subscribe after: %v, %v", r, err)
	}
	// Both of the client's cookies reach it.
	if r, _, err := lp.Connect(ctx, M{"advice": M{"timeout": 0}}); err != nil || !r.Successful() {
		t.Fatalf("connect with the websocket's cookie after: %v, %v", r, err)
	}
	// Another browser's cookie does not.
	other := gatewaytest.NewClient(srv.URL, nil)
	other.HTTP.Jar.SetCookies(u, []*http.Cookie{{Name: "BAYEUX_BROWSER", Value: "someone-else"}})
	m := other.NewMessage("/meta/connect", M{"clientId": hs.Str("clientId"), "connectionType": "long-polling", "advice": M{"timeout": 0}})
	msgs, _, err := other.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 || msgs[0].Successful() || msgs[0].Str("error") != "402::session_unknown" {
		t.Errorf("connect from another browser after the first connect: %v; want 402::session_unknown", msgs)
	}
}
