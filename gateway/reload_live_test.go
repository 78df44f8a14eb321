package gateway_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

// Lowered limits apply to the next subscribe (403) and the next request
// (413) while a websocket session and a held long-polling connect made
// before the reload carry on.
func TestReloadLimitsLive(t *testing.T) {
	srv, path := startFromFile(t, fileConfig("limits:\n  maxSubscriptionsPerSession: 5\n"))
	ctx := gatewaytest.Context(t)

	ws, _, err := gatewaytest.DialWebSocket(ctx, "ws"+strings.TrimPrefix(bayeuxURL(srv), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": []string{"/a", "/b"}}); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	if r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket"}); err != nil || !r.Successful() {
		t.Fatalf("connect: %v, %v", r, err)
	}
	if err := ws.Send(ws.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}

	lp, held := heldLongPoll(t, ctx, srv, ws)

	// A publish of about 2 KB, within the default maxRequestBytes.
	big := lp.NewMessage("/chat", M{"data": M{"text": strings.Repeat("x", 2000)}})
	if _, _, err := lp.Send(ctx, big); err != nil {
		t.Fatalf("a 2 KB request before the reload: %v", err)
	}

	writeFile(t, path, fileConfig("limits:\n  maxSubscriptionsPerSession: 2\n  maxRequestBytes: 1024\n"))
	res, err := srv.Reload(ctx)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, want := range []string{"limits.maxSubscriptionsPerSession changed", "limits.maxRequestBytes changed"} {
		if !slices.Contains(res.Applied, want) {
			t.Errorf("Reload applied %q; want it to include %q", res.Applied, want)
		}
	}
	if len(res.NeedsRestart) != 0 {
		t.Errorf("Reload needs restart for %q; want nothing", res.NeedsRestart)
	}

	r, _, err := ws.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/c"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Successful() || !strings.HasPrefix(r.Str("error"), "403:") {
		t.Errorf("websocket subscribe past the lowered limit = %v; want a 403 error", r)
	}
	r, _, err = lp.Subscribe(ctx, []string{"/x", "/y"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Successful() || !strings.HasPrefix(r.Str("error"), "403:") {
		t.Errorf("long-polling subscribe past the lowered limit = %v; want a 403 error", r)
	}
	big = lp.NewMessage("/chat", M{"data": M{"text": strings.Repeat("x", 2000)}})
	var se *gatewaytest.StatusError
	if _, _, err := lp.Send(ctx, big); !errors.As(err, &se) || se.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 KB request after lowering maxRequestBytes to 1024: %v; want 413", err)
	}

	heldAnswered(t, ctx, srv, held)
	if _, err := srv.Engine().Publish("/a", []byte(`{"after":"reload"}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool { return m.Channel() == "/a" }); err != nil {
		t.Errorf("websocket session subscribed before the reload got nothing on /a: %v", err)
	}
}

// An origin added to cors.allowedOrigins may open a websocket and gets
// the CORS headers (with the new cors.maxAge) once reloaded; before, it
// was refused.
func TestReloadAllowedOrigin(t *testing.T) {
	srv, path := startFromFile(t, fileConfig(""))
	ctx := gatewaytest.Context(t)
	url := "ws" + strings.TrimPrefix(bayeuxURL(srv), "http")
	origin := http.Header{"Origin": {"http://app.example"}}

	if ws, resp, err := gatewaytest.DialWebSocket(ctx, url, origin); err == nil {
		ws.Close()
		t.Fatal("websocket upgrade from an origin not allowed succeeded")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("websocket upgrade from an origin not allowed: %v; want 403", err)
	}

	writeFile(t, path, fileConfig("cors:\n  allowedOrigins: [\"http://app.example\"]\n  maxAge: 1m\n"))
	res, err := srv.Reload(ctx)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Contains(res.Applied, "cors.allowedOrigins changed") || len(res.NeedsRestart) != 0 {
		t.Errorf("Reload = applied %q, needs restart %q; want cors.allowedOrigins applied", res.Applied, res.NeedsRestart)
	}

	ws, _, err := gatewaytest.DialWebSocket(ctx, url, origin)
	if err != nil {
		t.Fatalf("websocket upgrade from the origin allowed by the reload: %v", err)
	}
	defer ws.Close()
	if r, _, err := ws.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, bayeuxURL(srv), nil)
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, _, err := gatewaytest.NewClient(bayeuxURL(srv), nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://app.example" {
		t.Errorf("preflight Access-Control-Allow-Origin = %q; want http://app.example", got)
	}
	if got := resp.Header.Get("Access-Control-Max-Age"); got != "60" {
		t.Errorf("preflight Access-Control-Max-Age = %q; want 60 (cors.maxAge: 1m)", got)
	}
}

// Cookie settings changed by a reload show in the next handshake's
// Set-Cookie; a changed cookie name needs a restart and is not applied.
func TestReloadCookie(t *testing.T) {
	srv, path := startFromFile(t, fileConfig(""))
	ctx := gatewaytest.Context(t)
	setCookie := func() *http.Cookie {
		t.Helper()
		c := gatewaytest.NewClient(bayeuxURL(srv), nil)
		msgs, resp, err := c.Send(ctx, c.NewMessage("/meta/handshake", M{
			"version": "1.0", "supportedConnectionTypes": []string{"long-polling"},
		}))
		if err != nil || len(msgs) != 1 || !msgs[0].Successful() {
			t.Fatalf("handshake: %v, %v", msgs, err)
		}
		for _, ck := range resp.Cookies() {
			return ck
		}
		t.Fatal("handshake set no cookie")
		return nil
	}
	if c := setCookie(); c.Name != "BAYEUX_BROWSER" || c.Path != "/" || c.SameSite != 0 {
		t.Fatalf("cookie before the reload = %v; want BAYEUX_BROWSER, Path=/, no SameSite", c)
	}

	writeFile(t, path, fileConfig("cookie:\n  name: OTHER\n  path: /cometd\n  sameSite: strict\n"))
	res, err := srv.Reload(ctx)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Equal(res.NeedsRestart, []string{"cookie.name"}) {
		t.Errorf("Reload needs restart for %q; want [cookie.name]", res.NeedsRestart)
	}
	for _, want := range []string{"cookie.path changed", "cookie.sameSite changed"} {
		if !slices.Contains(res.Applied, want) {
			t.Errorf("Reload applied %q; want it to include %q", res.Applied, want)
		}
	}
	if c := setCookie(); c.Name != "BAYEUX_BROWSER" || c.Path != "/cometd" || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie after the reload = %v; want BAYEUX_BROWSER (name needs a restart), Path=/cometd, SameSite=Strict", c)
	}
}

// limits.maxConnectionsPerAddress raised by a reload lets more
// connections in, and the one held from before stays open; set from 0 it
// limits the connections accepted from then on.
func TestReloadConnectionsPerAddress(t *testing.T) {
	srv, path := startFromFile(t, fileConfig("limits:\n  maxConnectionsPerAddress: 1\n"))
	ctx := gatewaytest.Context(t)
	url := "ws" + strings.TrimPrefix(bayeuxURL(srv), "http")
	dial := func() (*gatewaytest.WSClient, int) {
		t.Helper()
		w, resp, err := gatewaytest.DialWebSocket(ctx, url, nil)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(w.Close)
		return w, http.StatusSwitchingProtocols
	}
	first, code := dial()
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("first connection: %d", code)
	}
	if r, _, err := first.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if _, code := dial(); code != http.StatusServiceUnavailable {
		t.Fatalf("second connection with limit 1: %d; want 503", code)
	}

	writeFile(t, path, fileConfig("limits:\n  maxConnectionsPerAddress: 3\n"))
	if _, err := srv.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for i := range 2 {
		if _, code := dial(); code != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d with the limit raised to 3: %d", i+2, code)
		}
	}
	if _, code := dial(); code != http.StatusServiceUnavailable {
		t.Errorf("fourth connection with limit 3: %d; want 503", code)
	}
	if r, _, err := first.Call(gatewaytest.DefaultTimeout, "/meta/connect", M{"connectionType": "websocket", "advice": M{"timeout": 0}}); err != nil || !r.Successful() {
		t.Errorf("connect on the connection from before the reload: %v, %v", r, err)
	}
}
