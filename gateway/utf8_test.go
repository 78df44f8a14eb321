package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
)

// badUTF8 is not UTF-8: an invalid byte, a byte-order mark's bytes and a
// lone surrogate (U+D800) encoded as raw bytes.
const badUTF8 = "\xff\xfe\xed\xa0\x80"

// readValidUntil reads ws's frames until one holds a message for which
// match is true, and returns that message. Every frame on the way must be
// a text frame of valid UTF-8 JSON, as any browser requires.
func readValidUntil(t *testing.T, ws *websocket.Conn, match func(frameMsg) bool) frameMsg {
	t.Helper()
	deadline := time.Now().Add(gatewaytest.DefaultTimeout)
	for {
		ws.SetReadDeadline(deadline)
		typ, raw, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != websocket.TextMessage || !utf8.Valid(raw) || !json.Valid(raw) {
			t.Fatalf("frame %q (type %d) is not valid UTF-8 JSON text", raw, typ)
		}
		var msgs []frameMsg
		if err := json.Unmarshal(raw, &msgs); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		for _, m := range msgs {
			if match(m) {
				return m
			}
		}
	}
}

// closeCode reads ws until the server closes it and returns the close
// frame's code and reason.
func closeCode(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(gatewaytest.DefaultTimeout))
	for {
		_, raw, err := ws.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return ce.Code, ce.Text
		case err != nil:
			t.Fatalf("connection ended without a close frame: %v", err)
		case !utf8.Valid(raw):
			t.Fatalf("frame %q is not valid UTF-8", raw)
		}
	}
}

func (c *wsCaller) subscribe(t *testing.T, channel string) {
	t.Helper()
	frame := `[{"id":"s","channel":"/meta/subscribe","clientId":"` + c.id + `","subscription":"` + channel + `"}]`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	r := readValidUntil(t, c.ws, func(m frameMsg) bool { return m.Channel == "/meta/subscribe" && m.ID == "s" })
	if r.Successful == nil || !*r.Successful {
		t.Fatalf("subscribe to %s: %+v", channel, r)
	}
}

// A websocket frame that is not UTF-8 closes its connection with 1007 and
// reaches no one; a healthy subscriber of the channel stays connected and
// gets the next valid message first.
func TestInvalidUTF8WebSocketFrame(t *testing.T) {
	srv := gatewaytest.NewServer(t, nil)
	sub, err := dialCaller(srv.WSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.ws.Close()
	sub.subscribe(t, "/chat/room")
	for name, tmpl := range map[string]string{
		"data":     `[{"id":"1","channel":"/chat/room","clientId":"$ID","data":"` + badUTF8 + `"}]`,
		"ext":      `[{"id":"1","channel":"/chat/room","clientId":"$ID","data":1,"ext":{"k":"` + "\xc0\xaf" + `"}}]`,
		"channel":  `[{"id":"1","channel":"/chat/room` + "\xe2\x82" + `","clientId":"$ID","data":1}]`,
		"no JSON":  "\xff",
		"overlong": `[{"id":"1","channel":"/chat/room","clientId":"$ID","data":{"` + "\xe0\x80\xaf" + `":1}}]`,
	} {
		t.Run(name, func(t *testing.T) {
			pub, err := dialCaller(srv.WSURL)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.ws.Close()
			frame := strings.ReplaceAll(tmpl, "$ID", pub.id)
			if err := pub.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			if code, reason := closeCode(t, pub.ws); code != websocket.CloseInvalidFramePayloadData || reason != "invalid UTF-8" {
				t.Fatalf("close %d %q; want 1007 \"invalid UTF-8\"", code, reason)
			}
		})
	}
	pub, err := dialCaller(srv.WSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.ws.Close()
	valid := `[{"id":"2","channel":"/chat/room","clientId":"` + pub.id + `","data":{"ok":true}}]`
	if err := pub.ws.WriteMessage(websocket.TextMessage, []byte(valid)); err != nil {
		t.Fatal(err)
	}
	ev := readValidUntil(t, sub.ws, func(m frameMsg) bool { return m.Channel == "/chat/room" && m.Data != nil })
	if string(ev.Data) != `{"ok":true}` {
		t.Errorf("subscriber's first event has data %s; want the valid message", ev.Data)
	}
}

// A long-polling or callback-polling request that is not UTF-8 is answered
// 400 and processed not at all.
func TestInvalidUTF8PollingRequest(t *testing.T) {
	srv := gatewaytest.NewServer(t, nil)
	ctx := gatewaytest.Context(t)
	c := srv.Client()
	if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v %v", r, err)
	}
	if r, _, err := c.Subscribe(ctx, "/chat/room"); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v %v", r, err)
	}
	if _, _, err := c.Connect(ctx, nil); err != nil { // the first connect returns at once
		t.Fatal(err)
	}
	publish := `[{"id":"9","channel":"/chat/room","clientId":"` + c.ClientID + `","data":"` + badUTF8 + `"}]`
	requests := map[string]func() (*http.Response, []byte, error){
		"JSON body": func() (*http.Response, []byte, error) {
			return c.Post(ctx, "application/json;charset=UTF-8", []byte(publish))
		},
		"form body": func() (*http.Response, []byte, error) {
			return c.Post(ctx, "application/x-www-form-urlencoded", []byte("message="+url.QueryEscape(publish)))
		},
		"JSONP message": func() (*http.Response, []byte, error) {
			return c.Get(ctx, url.Values{"jsonp": {"cb"}, "message": {publish}})
		},
	}
	for name, send := range requests {
		resp, body, err := send()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid UTF-8") {
			t.Errorf("%s: %d %q; want 400 naming invalid UTF-8", name, resp.StatusCode, body)
		}
	}
	pub := srv.Client()
	if r, _, err := pub.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("publisher's handshake: %v %v", r, err)
	}
	if r, _, err := pub.Publish(ctx, "/chat/room", map[string]bool{"ok": true}, nil); err != nil || !r.Successful() {
		t.Fatalf("valid publish: %v %v", r, err)
	}
	resp, body, err := c.Post(ctx, "application/json", []byte(`[{"id":"c","channel":"/meta/connect","clientId":"`+c.ClientID+`","connectionType":"long-polling"}]`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %v %v", resp, err)
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		t.Fatalf("connect answer %q is not valid UTF-8 JSON", body)
	}
	var msgs []gatewaytest.Message
	json.Unmarshal(body, &msgs)
	evs := gatewaytest.Events(msgs)
	if len(evs) != 1 || evs[0].Str("id") != "" || !strings.Contains(evs[0].String(), `"ok":true`) {
		t.Errorf("events %v; want only the valid publish", evs)
	}
}

// utf8Backend answers calls with bytes that are not UTF-8 when the call's
// data asks for it, and streams one such message before a valid one.
type utf8Backend struct {
	backendv1.UnimplementedBackendServer
}

func (utf8Backend) Call(_ context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	if strings.Contains(string(r.GetData()), "bad") {
		return &backendv1.CallResponse{Data: []byte(`{"answer":"` + badUTF8 + `"}`)}, nil
	}
	return &backendv1.CallResponse{Data: r.GetData()}, nil
}

func (utf8Backend) Subscribe(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
	s.Send(&backendv1.StreamMessage{Data: []byte(`"` + badUTF8 + `"`)})
	s.Send(&backendv1.StreamMessage{Data: []byte(`{"n":1}`), Ext: []byte(`{"k":"` + "\xc0\xaf" + `"}`)})
	s.Send(&backendv1.StreamMessage{Data: []byte(`{"n":2}`)})
	<-s.Context().Done()
	return nil
}

// A backend's call answer that is not UTF-8 reaches its caller as an error
// reply, never as bytes; stream messages that are not UTF-8 are dropped.
// The client stays connected throughout.
func TestInvalidUTF8FromBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	backendv1.RegisterBackendServer(gs, utf8Backend{})
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	srv := gatewaytest.NewServer(t, func(cfg *config.Config) {
		cfg.Backends = map[string]config.BackendConfig{"b": {Target: ln.Addr().String()}}
		cfg.Routes = []config.RouteConfig{
			{Channel: "/service/rpc", Backend: "b", Type: config.RouteCall},
			{Channel: "/feed/*", Backend: "b", Type: config.RouteStream},
		}
		cfg.SetDefaults()
	})
	c, err := dialCaller(srv.WSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.Close()

	c.publish(t, "1", `{"bad":true}`)
	answer := readValidUntil(t, c.ws, func(m frameMsg) bool { return m.ID == "1" && m.Successful != nil && m.Data != nil })
	// The detail (invalid UTF-8) goes to the log, never to browsers.
	if *answer.Successful || answer.Error != "500:Internal:backend error" {
		t.Errorf("answer to a call answered with invalid UTF-8: %+v; want 500:Internal:backend error", answer)
	}
	c.publish(t, "2", `{"good":true}`)
	answer = readValidUntil(t, c.ws, func(m frameMsg) bool { return m.ID == "2" && m.Data != nil })
	if !*answer.Successful || string(answer.Data) != `{"good":true}` {
		t.Errorf("next call's answer: %+v", answer)
	}

	// The stream opens on the subscription, so its first message may come
	// in the same frame as the subscribe reply: read until both are seen.
	frame := `[{"id":"s","channel":"/meta/subscribe","clientId":"` + c.id + `","subscription":"/feed/a"}]`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	var ev, reply frameMsg
	readValidUntil(t, c.ws, func(m frameMsg) bool {
		switch {
		case m.Channel == "/meta/subscribe" && m.ID == "s":
			reply = m
		case m.Channel == "/feed/a" && ev.Channel == "":
			ev = m
		}
		return reply.Channel != "" && ev.Channel != ""
	})
	if reply.Successful == nil || !*reply.Successful {
		t.Fatalf("subscribe: %+v", reply)
	}
	if string(ev.Data) != `{"n":2}` {
		t.Errorf("first stream event has data %s; want {\"n\":2}, the first valid message", ev.Data)
	}
}
