package transport_test

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/transport"
	"github.com/gorilla/websocket"
)

func newServer(t *testing.T, cfg transport.Config) *httptest.Server {
	t.Helper()
	e := engine.New(engine.Config{Timeout: time.Second})
	e.Start(context.Background())
	srv := httptest.NewServer(transport.NewHandler(e, cfg))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
		srv.Close()
	})
	return srv
}

const handshake = `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`

func post(t *testing.T, url, origin, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestCORS(t *testing.T) {
	srv := newServer(t, transport.Config{AllowedOrigins: []string{"http://app.example"}})
	resp := post(t, srv.URL+"/handshake", "http://app.example", handshake)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed origin: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	resp = post(t, srv.URL, "http://evil.example", handshake)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("refused origin: status %d, Set-Cookie %q; want 403 and no session", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	same := post(t, srv.URL, srv.URL, handshake)
	if same.StatusCode != 200 {
		t.Errorf("same origin: status %d", same.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/connect", nil)
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 200 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") || pre.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
}

func TestWebSocketOriginAllowlist(t *testing.T) {
	srv := newServer(t, transport.Config{AllowedOrigins: []string{"http://app.example"}})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	for origin, want := range map[string]int{"http://app.example": 101, "http://evil.example": 403, "": 101} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, _ := websocket.DefaultDialer.Dial(wsURL, h)
		if c != nil {
			c.Close()
		}
		if resp == nil || resp.StatusCode != want {
			t.Errorf("upgrade from origin %q: %v; want %d", origin, resp, want)
		}
	}
}

func TestWebSocketSubprotocolRequired(t *testing.T) {
	srv := newServer(t, transport.Config{WebSocket: transport.WebSocketConfig{Subprotocol: "bayeux/1.0"}})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	if c, _, err := websocket.DefaultDialer.Dial(wsURL, nil); err == nil {
		c.Close()
		t.Error("upgrade without the required subprotocol succeeded")
	}
	d := websocket.Dialer{Subprotocols: []string{"bayeux/1.0"}}
	c, _, err := d.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("upgrade with the subprotocol: %v", err)
	}
	c.Close()
}

func TestJSONPEscapesLineSeparators(t *testing.T) {
	srv := newServer(t, transport.Config{})
	q := url.Values{"jsonp": {"cb"}, "message": {`[{"channel":"/meta/handshake","ext":{"x":"a` + "\u2028" + `b"}}]`}}
	resp, err := http.Get(srv.URL + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/javascript;charset=UTF-8" || !strings.HasPrefix(string(body), "cb([") || !strings.HasSuffix(string(body), "])") {
		t.Fatalf("JSONP response %q %q", resp.Header.Get("Content-Type"), body)
	}
}

func TestUnknownTransport(t *testing.T) {
	srv := newServer(t, transport.Config{ConnectionTypes: []string{transport.WebSocket, transport.LongPolling}})
	for _, u := range []string{srv.URL, srv.URL + "?jsonp=cb&message=[]"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d; want 400 (callback-polling disabled)", u, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader(handshake))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT = %d; want 400", resp.StatusCode)
	}
}

func TestLimits(t *testing.T) {
	srv := newServer(t, transport.Config{MaxRequestBytes: 2048, MaxBatch: 2})
	big := `[{"channel":"/meta/handshake","ext":{"pad":"` + strings.Repeat("x", 4096) + `"}}]`
	if resp := post(t, srv.URL, "", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d; want 413", resp.StatusCode)
	}
	if resp := post(t, srv.URL, "", `[{"channel":"/a"},{"channel":"/b"},{"channel":"/c"}]`); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("batch of 3 with limit 2 = %d; want 413", resp.StatusCode)
	}
	if resp := post(t, srv.URL, "", `[{"channel":`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("truncated JSON = %d; want 400", resp.StatusCode)
	}
}

func FuzzJSONPCallback(f *testing.F) {
	for _, s := range []string{"cb", "jQuery123_456", "dojo.io.script.jsonp_dojoIoScript1._jsonpCallback", "__jsonp1__", "alert(1)", "a;b", "</script>", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !transport.ValidCallback(name, 64) {
			return
		}
		// An accepted name can only be an identifier path: nothing that
		// could end the call expression or start another statement.
		if len(name) > 64 || strings.ContainsAny(name, "()[]{};,'\"`<>=+ \t\r\n/\\") {
			t.Fatalf("ValidCallback accepted %q", name)
		}
	})
}

// panicky is an extension with a bug: it panics on one channel.
type panicky struct{}

func (panicky) Incoming(x *engine.Exchange) error {
	if x.Request.Channel == "/boom" {
		panic("extension bug")
	}
	return nil
}

func (panicky) Outgoing(*engine.Exchange) {}

// A panic while processing one client's message ends that client's request
// or connection only; the node and other clients carry on.
func TestPanicIsContained(t *testing.T) {
	e := engine.New(engine.Config{Timeout: time.Second}, engine.WithExtension(panicky{}), engine.WithLogger(slog.New(slog.DiscardHandler)))
	e.Start(context.Background())
	srv := httptest.NewServer(transport.NewHandler(e, transport.Config{Logger: slog.New(slog.DiscardHandler)}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(func() {
		e.Close(context.Background())
		srv.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")

	bad, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.WriteMessage(websocket.TextMessage, []byte(handshake))
	var hs []map[string]any
	bad.ReadJSON(&hs)
	id, _ := hs[0]["clientId"].(string)
	bad.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/boom","clientId":"`+id+`","data":1}]`))
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = bad.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr {
		t.Fatalf("websocket after a panic: %v; want close 1011", err)
	}

	// Long-polling: net/http recovers the handler; the request fails alone.
	if resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`[{"channel":"/boom"}]`)); err == nil {
		resp.Body.Close()
		t.Fatalf("long-polling request that panicked got a response: %d", resp.StatusCode)
	}

	good, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("node down after a panic: %v", err)
	}
	defer good.Close()
	good.WriteMessage(websocket.TextMessage, []byte(handshake))
	var r []map[string]any
	good.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := good.ReadJSON(&r); err != nil || r[0]["successful"] != true {
		t.Fatalf("handshake after a panic: %v %v", r, err)
	}
}
