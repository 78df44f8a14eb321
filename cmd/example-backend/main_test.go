package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	examplev1 "github.com/cometgate/cometgate/proto/gen/example/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// serve runs both modes' services on an in-memory listener.
func serve(t *testing.T) *grpc.ClientConn {
	conn, _ := serveChat(t)
	return conn
}

// serveChat is serve, also returning the chat service.
func serveChat(t *testing.T) (*grpc.ClientConn, *chat) {
	t.Helper()
	done := make(chan struct{})
	srv := grpc.NewServer()
	ch := newChat(done, slog.New(slog.DiscardHandler))
	backendv1.RegisterBackendServer(srv, ch)
	examplev1.RegisterCalculatorServer(srv, calculator{})
	examplev1.RegisterTickerServer(srv, &ticker{done: done})
	ln := bufconn.Listen(1 << 20)
	go srv.Serve(ln)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); close(done); srv.Stop() })
	return conn, ch
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func call(t *testing.T, c backendv1.BackendClient, channel, data string) (map[string]any, error) {
	t.Helper()
	resp, err := c.Call(ctx(t), &backendv1.CallRequest{Channel: channel, Data: []byte(data)})
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(resp.GetData(), &out); err != nil {
		t.Fatalf("%s: reply %q is not a JSON object", channel, resp.GetData())
	}
	return out, nil
}

func TestCallErrors(t *testing.T) {
	c := backendv1.NewBackendClient(serve(t))
	for _, tc := range []struct {
		channel, data string
		want          codes.Code
	}{
		{"/service/rooms/nope", `{}`, codes.NotFound},
		{"/service/rooms/join", `"lobby"`, codes.InvalidArgument},
		{"/service/rooms/join", `{"room":"a/b","user":"x"}`, codes.InvalidArgument},
		{"/service/rooms/join", `{"room":"lobby"}`, codes.InvalidArgument}, // no user, none bound
		{"/service/rooms/members", `{"room":"unknown"}`, codes.NotFound},
	} {
		if _, err := call(t, c, tc.channel, tc.data); status.Code(err) != tc.want {
			t.Errorf("Call(%s, %s) = %v; want %v", tc.channel, tc.data, err, tc.want)
		}
	}
}

func TestEcho(t *testing.T) {
	c := backendv1.NewBackendClient(serve(t))
	const data = `{"n":12345678901234567,"s":"x"}`
	resp, err := c.Call(ctx(t), &backendv1.CallRequest{Channel: "/service/echo", Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.GetData()) != data {
		t.Errorf("echo = %s; want %s", resp.GetData(), data)
	}
}

func TestRoomEventsResume(t *testing.T) {
	conn, ch := serveChat(t)
	c := backendv1.NewBackendClient(conn)
	for _, u := range []string{"ann", "bob", "cat"} {
		if _, err := call(t, c, "/service/rooms/join", `{"room":"r1","user":"`+u+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	type event struct {
		offset uint64
		user   string
	}
	for _, tt := range []struct {
		name        string
		resumeAfter uint64
		epoch       string
		want        []event
	}{
		{"this instance", 1, ch.epoch, []event{{2, "bob"}, {3, "cat"}}},
		{"no epoch", 1, "", []event{{2, "bob"}, {3, "cat"}}},
		// Offsets of a previous instance: all of this one's events.
		{"another instance", 2, "old", []event{{1, "ann"}, {2, "bob"}, {3, "cat"}}},
		{"no epoch, beyond the newest", 7, "", []event{{1, "ann"}, {2, "bob"}, {3, "cat"}}},
	} {
		st, err := c.Subscribe(ctx(t), &backendv1.SubscribeRequest{Channel: "/rooms/r1/events", ResumeAfter: tt.resumeAfter, ResumeEpoch: tt.epoch})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range tt.want {
			m, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			var ev struct{ User string }
			json.Unmarshal(m.GetData(), &ev)
			if m.GetOffset() != want.offset || ev.User != want.user || m.GetEpoch() != ch.epoch {
				t.Errorf("%s: event = offset %d epoch %q %s; want offset %d user %s epoch %q", tt.name, m.GetOffset(), m.GetEpoch(), m.GetData(), want.offset, want.user, ch.epoch)
			}
		}
	}
}

// TestRoomEventsAcrossRestart runs the gateway against a real backend on
// loopback and restarts the backend while a client is subscribed to a
// room's events: the joins made on the new instance reach the client, after
// a gap notice, instead of being skipped as offsets already seen.
func TestRoomEventsAcrossRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) (stop func()) {
		done := make(chan struct{})
		srv := grpc.NewServer()
		backendv1.RegisterBackendServer(srv, newChat(done, slog.New(slog.DiscardHandler)))
		go srv.Serve(ln)
		return func() { close(done); srv.Stop() }
	}
	stop := start(ln)
	t.Cleanup(func() { stop() })
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Bayeux.Timeout = config.Duration(200 * time.Millisecond)
		c.Demo.Enabled = config.Bool(false)
		c.Backends = map[string]config.BackendConfig{"rooms": {Target: addr}}
		c.Routes = []config.RouteConfig{{Channel: "/rooms/**", Backend: "rooms", Type: config.RouteStream}}
		c.SetDefaults()
	})
	ctx := gatewaytest.Context(t)
	// join calls the backend instance listening now, over a connection of
	// its own.
	join := func(user string) {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := call(t, backendv1.NewBackendClient(conn), "/service/rooms/join", `{"room":"r1","user":"`+user+`"}`); err != nil {
			t.Fatalf("join %s: %v", user, err)
		}
	}
	cl := srv.Client()
	if r, _, err := cl.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v %v", r, err)
	}
	if _, _, err := cl.Connect(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r, _, err := cl.Subscribe(ctx, "/rooms/r1/events"); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v %v", r, err)
	}
	// events returns what one connect brings: the users of the join
	// events, and "gap" for a gap notice.
	events := func() []string {
		t.Helper()
		_, msgs, err := cl.Connect(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			switch {
			case m.Channel() != "/rooms/r1/events":
			case m.Obj("ext").Obj("cometgate").Has("gap"):
				out = append(out, "gap")
			default:
				out = append(out, m.Obj("data").Str("user"))
			}
		}
		return out
	}
	// A fresh stream carries only new joins: join until one arrives, which
	// shows that the stream is open.
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("no join event arrived")
		}
		join(fmt.Sprint("early", i))
		if len(events()) > 0 {
			break
		}
	}
	var seen []string
	join("ann")
	join("bob")
	for !slices.Contains(seen, "bob") {
		seen = append(seen, events()...)
	}

	stop()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	stop = start(ln)
	join("cat")
	join("dan")
	seen = nil
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(seen, "cat") || !slices.Contains(seen, "dan") {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart, got %v; want the joins of cat and dan", seen)
		}
		seen = append(seen, events()...)
	}
	if i := slices.Index(seen, "gap"); i < 0 || i > slices.Index(seen, "cat") {
		t.Errorf("after the restart, got %v; want a gap notice before the new instance's events", seen)
	}
}

func TestTicksResume(t *testing.T) {
	c := backendv1.NewBackendClient(serve(t))
	st, err := c.Subscribe(ctx(t), &backendv1.SubscribeRequest{Channel: "/stocks/ACME", ResumeAfter: 41})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var tick struct {
		Symbol string
		Price  float64
		Seq    uint64
	}
	json.Unmarshal(m.GetData(), &tick)
	if m.GetOffset() != 42 || tick.Seq != 42 || tick.Symbol != "ACME" || tick.Price != price("ACME", 42) {
		t.Errorf("first tick after 41 = offset %d %s", m.GetOffset(), m.GetData())
	}
}

func TestPublishModeration(t *testing.T) {
	c := backendv1.NewBackendClient(serve(t))
	for _, tc := range []struct {
		channel, data, reject, rewritten string
	}{
		{"/rooms/lobby", `{"text":"hi"}`, "", `{"moderated":true,"text":"hi"}`},
		{"/rooms/lobby", `{"text":"Spam, spam"}`, "spam", ""},
		{"/rooms/lobby", `{"text":"spammy is fine"}`, "", `{"moderated":true,"text":"spammy is fine"}`},
		{"/rooms/lobby", `[1,2]`, "", ""},
		{"/rooms/lobby/events", `{"text":"x"}`, "read_only", ""},
	} {
		resp, err := c.Publish(ctx(t), &backendv1.PublishRequest{Channel: tc.channel, Data: []byte(tc.data)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetRejectReason() != tc.reject || string(resp.GetData()) != tc.rewritten {
			t.Errorf("Publish(%s, %s) = reject %q data %s; want %q %s", tc.channel, tc.data, resp.GetRejectReason(), resp.GetData(), tc.reject, tc.rewritten)
		}
	}
}

func TestHandshake(t *testing.T) {
	c := backendv1.NewBackendClient(serve(t))
	for ext, user := range map[string]string{
		`{"auth":{"token":"demo","user":"ann"}}`: "ann",
		`{"auth":{"token":"demo"}}`:              "guest",
		`{"auth":{"token":"nope"}}`:              "",
		`{"auth":"demo"}`:                        "",
		``:                                       "",
	} {
		resp, err := c.Handshake(ctx(t), &backendv1.HandshakeRequest{Ext: []byte(ext)})
		switch {
		case user == "" && status.Code(err) != codes.Unauthenticated:
			t.Errorf("Handshake(%s) = %v; want Unauthenticated", ext, err)
		case user != "" && (err != nil || resp.GetUserId() != user):
			t.Errorf("Handshake(%s) = %v, %v; want user %s", ext, resp, err, user)
		}
	}
}

func TestPlain(t *testing.T) {
	conn := serve(t)
	sum, err := examplev1.NewCalculatorClient(conn).Add(ctx(t), &examplev1.AddRequest{A: 2, B: 40})
	if err != nil || sum.GetSum() != 42 {
		t.Fatalf("Add(2, 40) = %v, %v", sum, err)
	}
	st, err := examplev1.NewTickerClient(conn).Watch(ctx(t), &examplev1.WatchRequest{IntervalMs: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 4 {
		q, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, q.GetSymbol())
		if want := int64(len(got)+1) / 2; q.GetSequence() != want {
			t.Errorf("quote %d has sequence %d; want %d", len(got), q.GetSequence(), want)
		}
	}
	if want := []string{"ACME", "GLOBEX", "ACME", "GLOBEX"}; !slices.Equal(got, want) {
		t.Errorf("symbols = %v; want %v", got, want)
	}
}
