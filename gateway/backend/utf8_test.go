package backend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometgate/cometgate/gateway/backend"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
)

// badUTF8 is not UTF-8: an invalid byte, a byte-order mark's bytes and a
// lone surrogate (U+D800) encoded as raw bytes.
const badUTF8 = "\xff\xfe\xed\xa0\x80"

// nextValid waits for the client's next event, checks that its bytes are
// valid UTF-8 JSON, and decodes it.
func (c *client) nextValid() map[string]any {
	c.t.Helper()
	var raw []byte
	eventually(c.t, "an event", func() bool {
		if evs := c.s.Take(nil, 1); len(evs) > 0 {
			raw = evs[0]
			return true
		}
		return false
	})
	if !utf8.Valid(raw) || !json.Valid(raw) {
		c.t.Fatalf("event %q is not valid UTF-8 JSON", raw)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

// Stream messages whose data or ext is not UTF-8 are dropped and counted;
// the stream goes on.
func TestInvalidUTF8StreamMessagesDropped(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{subscribe: func(r *backendv1.SubscribeRequest, s grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
			s.Send(&backendv1.StreamMessage{Data: []byte(`{"n":"` + badUTF8 + `"}`), Offset: 1})
			s.Send(&backendv1.StreamMessage{Data: []byte(`{"n":2}`), Ext: []byte(`{"k":"` + "\xc0\xaf" + `"}`), Offset: 2})
			s.Send(&backendv1.StreamMessage{Data: []byte(`{"n":3}`), Ext: []byte(`{"k":"\ud800"}`), Offset: 3})
			<-s.Context().Done()
			return nil
		}})
	})
	n := newNode(t, backend.Config{Backends: map[string]backend.Spec{"t": spec(addr)}, Routes: []backend.RouteSpec{{Channel: "/stocks/*", Backend: "t", Type: backend.TypeStream}}})
	a, _ := n.client(t, "")
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/stocks/ACME"}`)
	if ev := a.nextValid(); fmt.Sprint(ev["data"]) != "map[n:3]" {
		t.Errorf("first event = %v; want the first valid message, n=3", ev)
	}
	if got := n.r.InvalidDropped(); got != 2 {
		t.Errorf("InvalidDropped() = %d; want 2", got)
	}
	if got := n.r.OpenStreams(); got != 1 {
		t.Errorf("OpenStreams() = %d; want the stream kept open", got)
	}
}

// A publish hook that rewrites data to bytes that are not UTF-8 fails the
// publish; an auth backend's handshake ext that is not UTF-8 is left out
// of the handshake reply.
func TestInvalidUTF8FromHooks(t *testing.T) {
	addr := serve(t, func(s *grpc.Server) {
		backendv1.RegisterBackendServer(s, &contract{
			publish: func(_ context.Context, r *backendv1.PublishRequest) (*backendv1.PublishResponse, error) {
				if strings.Contains(string(r.GetData()), "bad") {
					return &backendv1.PublishResponse{Data: []byte(`"` + badUTF8 + `"`)}, nil
				}
				return &backendv1.PublishResponse{}, nil
			},
			handshake: func(context.Context, *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error) {
				return &backendv1.HandshakeResponse{UserId: "u", Ext: []byte(`{"welcome":"` + badUTF8 + `"}`)}, nil
			},
		})
	})
	n := newNode(t, backend.Config{
		Backends:    map[string]backend.Spec{"m": spec(addr)},
		Routes:      []backend.RouteSpec{{Channel: "/rooms/*", Backend: "m", Type: backend.TypePublish}},
		AuthBackend: "m",
	})
	a, hs := n.client(t, "")
	if enc := hs.String(); !hs.Successful || strings.Contains(enc, "welcome") || !utf8.ValidString(enc) {
		t.Errorf("handshake reply = %q; want successful, without the invalid ext", enc)
	}
	a.send(`{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/rooms/lobby"}`)
	r := a.send(`{"id":"1","channel":"/rooms/lobby","clientId":"$ID","data":"bad"}`)
	// The detail (invalid UTF-8) goes to the log, never to browsers.
	if r.Successful || r.Error != "500:Internal:backend error" {
		t.Errorf("publish rewritten to invalid UTF-8: reply %s; want 500:Internal:backend error", r)
	}
	if r := a.send(`{"id":"2","channel":"/rooms/lobby","clientId":"$ID","data":"good"}`); !r.Successful {
		t.Fatalf("valid publish: %s", r)
	}
	if ev := a.nextValid(); ev["data"] != "good" {
		t.Errorf("first event = %v; want the valid publish", ev)
	}
}

// An HTTP backend's answer that is not UTF-8 reaches the caller as a 502
// error reply.
func TestInvalidUTF8HTTPAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"answer":"`+badUTF8+`"}`)
	}))
	defer srv.Close()
	n := newNode(t, backend.Config{
		Backends: map[string]backend.Spec{"legacy": {URL: srv.URL, Timeout: 2 * time.Second, RetryAttempts: 1, MaxMessageBytes: 1 << 20}},
		Routes:   []backend.RouteSpec{{Channel: "/service/legacy", Backend: "legacy", Type: backend.TypeCall}},
	})
	c, _ := n.client(t, "")
	c.send(`{"id":"1","channel":"/service/legacy","clientId":"$ID","data":{}}`)
	if r := c.nextValid(); r["successful"] != false || !strings.HasPrefix(fmt.Sprint(r["error"]), "502:http:") || !strings.Contains(fmt.Sprint(r["error"]), "invalid UTF-8") {
		t.Errorf("answer = %v; want a 502 error naming invalid UTF-8", r)
	}
}
