package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/gorilla/websocket"
)

// pausedSubscriber opens a websocket with a small receive buffer, subscribes
// to channel and then never reads again, so that the gateway's writes to it
// soon stop being accepted.
func pausedSubscriber(t *testing.T, ctx context.Context, wsURL, channel string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: gatewaytest.DefaultTimeout,
		NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			if err != nil {
				return err
			}
			return serr
		}}).DialContext,
	}
	conn, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("paused subscriber: dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	call := func(msg string) []M {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(gatewaytest.DefaultTimeout))
		conn.SetWriteDeadline(time.Now().Add(gatewaytest.DefaultTimeout))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("paused subscriber: write: %v", err)
		}
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("paused subscriber: read: %v", err)
		}
		var msgs []M
		if err := json.Unmarshal(data, &msgs); err != nil {
			t.Fatalf("paused subscriber: %v in %s", err, data)
		}
		return msgs
	}
	hs := call(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
	id := hs[0].Str("clientId")
	if id == "" {
		t.Fatalf("paused subscriber: handshake failed: %v", hs)
	}
	sub := call(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"` + channel + `","id":"2"}]`)
	if !sub[0].Successful() {
		t.Fatalf("paused subscriber: subscribe failed: %v", sub)
	}
	// A held connect: from now on broadcasts are pushed.
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"websocket","id":"3"}]`)); err != nil {
		t.Fatalf("paused subscriber: connect: %v", err)
	}
	return conn
}

// longSessions holds connects and keeps sessions for longer than a test
// runs, so that the test's clients need not reconnect.
func longSessions(c *config.Config) {
	c.Bayeux.Timeout = config.Duration(5 * time.Minute)
	c.Bayeux.MaxInterval = config.Duration(5 * time.Minute)
}

// healthySubscriber subscribes a reading websocket client to channel.
func healthySubscriber(t *testing.T, ctx context.Context, wsURL, channel string) *gatewaytest.WSClient {
	t.Helper()
	c, _, err := gatewaytest.DialWebSocket(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("healthy subscriber: %v", err)
	}
	t.Cleanup(c.Close)
	if r, _, err := c.Handshake(gatewaytest.DefaultTimeout, nil); err != nil || !r.Successful() {
		t.Fatalf("healthy subscriber: handshake %v, %v", r, err)
	}
	if r, _, err := c.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": channel}); err != nil || !r.Successful() {
		t.Fatalf("healthy subscriber: subscribe %v, %v", r, err)
	}
	if err := c.Send(c.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitClosed reads what the gateway wrote to a paused connection until
// the connection ends; it fails the test if it is still open at the end.
func waitClosed(t *testing.T, conn *websocket.Conn, timeout time.Duration) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("paused connection still open after %v", timeout)
			}
			return
		}
	}
}

// A client that stops reading its socket never delays delivery to anyone
// else, on its channel or another, and is cut off by its own bounds (issue
// 8.1). Messages are published in lockstep: each must reach the healthy
// subscribers before the next goes out, so a single write stuck on the
// paused socket fails the test.
func TestPausedSubscriberDoesNotStallOthers(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*config.Config)
	}{
		// The paused session's queue fills first: it is disconnected as slow.
		{"queue bound", func(c *config.Config) {
			c.Bayeux.MaxQueue = 40
			c.Transports.WebSocket.WriteTimeout = config.Duration(time.Minute)
		}},
		// The queue is large; the socket takes nothing for writeTimeout.
		{"no progress", func(c *config.Config) {
			c.Bayeux.MaxQueue = 100000
			c.Bayeux.MaxQueueBytes = 1 << 30
			c.Transports.WebSocket.WriteTimeout = config.Duration(time.Second)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := gatewaytest.NewServer(t, func(c *config.Config) {
				c.Demo.Enabled = config.Bool(false)
				longSessions(c)
				tc.configure(c)
			})
			// 800 publishes of 32 KB in lockstep take 10-16 s under -race on
			// a 2-core machine: more than gatewaytest's default deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			paused := pausedSubscriber(t, ctx, srv.WSURL, "/slow/a")
			same := healthySubscriber(t, ctx, srv.WSURL, "/slow/a")
			other := healthySubscriber(t, ctx, srv.WSURL, "/slow/b")
			pub := srv.Client()
			if r, _, err := pub.Handshake(ctx, nil); err != nil || !r.Successful() {
				t.Fatalf("publisher handshake: %v, %v", r, err)
			}
			payload := strings.Repeat("x", 32<<10)
			// 32 KB messages: the paused socket's buffers hold a few
			// megabytes at most, so it stalls within the first 200.
			const n = 400
			for i := range n {
				for _, sub := range []struct {
					ch string
					c  *gatewaytest.WSClient
				}{{"/slow/a", same}, {"/slow/b", other}} {
					r, _, err := pub.Publish(ctx, sub.ch, M{"i": i, "p": payload}, nil)
					if err != nil || !r.Successful() {
						t.Fatalf("publish %d on %s: %v, %v", i, sub.ch, r, err)
					}
					_, err = sub.c.ReadUntil(10*time.Second, func(m M) bool {
						d := m.Obj("data")
						return m.Channel() == sub.ch && d != nil && d["i"] == float64(i)
					})
					if err != nil {
						t.Fatalf("message %d on %s did not reach a healthy subscriber: %v", i, sub.ch, err)
					}
				}
			}
			waitClosed(t, paused, 30*time.Second)
			if got := srv.Transport().SlowClosed(); got != 1 {
				t.Errorf("SlowClosed() = %d; want 1 (the paused connection)", got)
			}
			// The healthy sessions are still there and served.
			for _, c := range []*gatewaytest.WSClient{same, other} {
				if r, _, err := c.Call(gatewaytest.DefaultTimeout, "/meta/subscribe", M{"subscription": "/slow/c"}); err != nil || !r.Successful() {
					t.Errorf("healthy subscriber no longer served: %v, %v", r, err)
				}
			}
		})
	}
}

// A client that sends requests but never reads their replies is cut off
// once what it owes passes maxPendingBytes, without waiting for its socket.
func TestUnreadRepliesBounded(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		longSessions(c)
		c.Transports.WebSocket.WriteTimeout = config.Duration(time.Minute)
		c.Transports.WebSocket.MaxPendingBytes = 1 << 20
	})
	ctx := gatewaytest.Context(t)
	paused := pausedSubscriber(t, ctx, srv.WSURL, "/slow/a")
	// Each frame is a batch of bad publishes whose replies are large: the
	// replies echo nothing, so use many small ones.
	batch := make([]string, 200)
	for i := range batch {
		batch[i] = fmt.Sprintf(`{"channel":"/meta/unsubscribe","subscription":"/slow/a","id":"%d"}`, i)
	}
	frame := []byte("[" + strings.Join(batch, ",") + "]")
	// The writes end when the gateway closes the connection; without the
	// bound they would block once the socket buffers fill, until the
	// gateway's write timeout (a minute here).
	ended := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 100000 && err == nil; i++ {
			err = paused.WriteMessage(websocket.TextMessage, frame)
		}
		ended <- err
	}()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the gateway kept accepting requests whose replies were not read")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway stopped reading instead of closing the connection")
	}
	waitClosed(t, paused, 30*time.Second)
	if got := srv.Transport().SlowClosed(); got != 1 {
		t.Errorf("SlowClosed() = %d; want 1", got)
	}
}

// With permessage-deflate negotiated, the frames the gateway writes itself
// (replies, pushed broadcasts, pings' replies) are compressed correctly.
func TestWebSocketCompression(t *testing.T) {
	srv := gatewaytest.NewServer(t, func(c *config.Config) {
		c.Demo.Enabled = config.Bool(false)
		c.Transports.WebSocket.Compression = true
	})
	ctx := gatewaytest.Context(t)
	d := websocket.Dialer{HandshakeTimeout: gatewaytest.DefaultTimeout, EnableCompression: true}
	conn, resp, err := d.DialContext(ctx, srv.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("Sec-WebSocket-Extensions = %q; want permessage-deflate", ext)
	}
	conn.SetReadDeadline(time.Now().Add(gatewaytest.DefaultTimeout))
	call := func(msg string) []M {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var msgs []M
		if err := json.Unmarshal(data, &msgs); err != nil {
			t.Fatalf("%v in %q", err, data)
		}
		return msgs
	}
	id := call(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)[0].Str("clientId")
	if id == "" {
		t.Fatal("handshake failed")
	}
	if r := call(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/z"}]`); !r[0].Successful() {
		t.Fatalf("subscribe: %v", r)
	}
	text := strings.Repeat("compressible ", 2000)
	got := call(`[{"channel":"/z","clientId":"` + id + `","data":{"t":"` + text + `"},"id":"p"}]`)
	for len(gatewaytest.Events(got)) == 0 {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"websocket","advice":{"timeout":0}}]`)); err != nil {
			t.Fatal(err)
		}
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		json.Unmarshal(data, &got)
	}
	if ev := gatewaytest.Events(got)[0]; ev.Obj("data").Str("t") != text {
		t.Fatalf("event data differs after decompression: %.80v", ev)
	}
}
