package demo_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/demo"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

const room = "/chat/demo"

// newServer starts a gateway whose connects are held briefly and whose
// sessions expire quickly, so that a client that stops connecting is
// soon removed.
func newServer(t *testing.T) *gatewaytest.Server {
	t.Helper()
	return gatewaytest.NewServer(t, func(c *config.Config) {
		c.Bayeux.Timeout = config.Duration(100 * time.Millisecond)
		c.Bayeux.MaxInterval = config.Duration(500 * time.Millisecond)
		c.Bayeux.SweepPeriod = config.Duration(20 * time.Millisecond)
	})
}

// peer is a long-polling client that keeps every event it receives.
type peer struct {
	t      *testing.T
	c      *gatewaytest.Client
	events []gatewaytest.Message
}

// newPeer handshakes a client and subscribes it to channels.
func newPeer(t *testing.T, srv *gatewaytest.Server, channels ...string) *peer {
	t.Helper()
	ctx := gatewaytest.Context(t)
	p := &peer{t: t, c: srv.Client()}
	if r, _, err := p.c.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if len(channels) > 0 {
		r, msgs, err := p.c.Subscribe(ctx, channels)
		if err != nil || !r.Successful() {
			t.Fatalf("subscribe %v: %v, %v", channels, r, err)
		}
		p.keep(msgs)
	}
	return p
}

func (p *peer) keep(msgs []gatewaytest.Message) {
	for _, m := range msgs {
		if m.Has("data") {
			p.events = append(p.events, m)
		}
	}
}

// join joins the room as name and returns the Member the remote call
// answers with.
func (p *peer) join(name string) demo.Member {
	p.t.Helper()
	ctx := gatewaytest.Context(p.t)
	req := p.c.NewMessage("/service/members", gatewaytest.Message{"data": map[string]string{"user": name, "room": room}})
	msgs, _, err := p.c.Send(ctx, req)
	if err != nil {
		p.t.Fatalf("join %s: %v", name, err)
	}
	if ack, ok := gatewaytest.FindReply(msgs, "/service/members", req["id"].(string)); !ok || !ack.Successful() {
		p.t.Fatalf("join %s: no successful ack in %v", name, msgs)
	}
	p.keep(msgs)
	answer := p.await(func(m gatewaytest.Message) bool {
		return m.Channel() == "/service/members" && m.Str("id") == req["id"]
	})
	var self demo.Member
	decode(p.t, answer, &self)
	return self
}

// await connects until an event matching match has arrived, and returns it.
func (p *peer) await(match func(gatewaytest.Message) bool) gatewaytest.Message {
	p.t.Helper()
	ctx := gatewaytest.Context(p.t)
	var found gatewaytest.Message
	gatewaytest.Eventually(p.t, 10*time.Second, func() error {
		for _, m := range p.events {
			if match(m) {
				found = m
				return nil
			}
		}
		_, msgs, err := p.c.Connect(ctx, nil)
		if err != nil {
			return err
		}
		p.keep(msgs)
		return fmt.Errorf("not received; events so far: %v", p.events)
	})
	return found
}

// members connects until the last member list received is want.
func (p *peer) members(want []demo.Member) {
	p.t.Helper()
	ctx := gatewaytest.Context(p.t)
	gatewaytest.Eventually(p.t, 10*time.Second, func() error {
		var last []demo.Member
		for _, m := range p.events {
			if m.Channel() == "/members/demo" {
				last = nil
				decode(p.t, m, &last)
			}
		}
		if slices.Equal(last, want) {
			return nil
		}
		_, msgs, err := p.c.Connect(ctx, nil)
		if err != nil {
			return err
		}
		p.keep(msgs)
		return fmt.Errorf("member list = %+v; want %+v", last, want)
	})
}

func decode(t *testing.T, m gatewaytest.Message, v any) {
	t.Helper()
	b, _ := json.Marshal(m["data"])
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("data of %v: %v", m, err)
	}
}

func chatText(text string) func(gatewaytest.Message) bool {
	return func(m gatewaytest.Message) bool {
		if m.Channel() != room {
			return false
		}
		d, _ := m["data"].(map[string]any)
		return d["chat"] == text
	}
}

// TestSameNameMembers checks that members are sessions, not names: two
// sessions joining as "bob" are two members, told apart by their labels,
// and a private message reaches the one it was sent to.
func TestSameNameMembers(t *testing.T) {
	srv := newServer(t)
	ctx := gatewaytest.Context(t)
	w := newPeer(t, srv, "/members/demo", room)
	b1, b2 := newPeer(t, srv, room), newPeer(t, srv, room)
	a := newPeer(t, srv)

	first := b1.join("bob")
	if first.Name != "bob" || first.Label != "bob" || first.ID == "" {
		t.Errorf("first bob joined as %+v; want name and label bob, an id", first)
	}
	second := b2.join("bob")
	if second.Name != "bob" || second.ID == first.ID || second.Label != "bob #"+second.ID {
		t.Errorf("second bob joined as %+v; want a new id and label %q", second, "bob #"+second.ID)
	}
	for _, id := range []string{first.ID, second.ID} {
		if id == b1.c.ClientID || id == b2.c.ClientID {
			t.Errorf("member id %q is a client id", id)
		}
	}
	alice := a.join("alice")
	first.Label = "bob #" + first.ID // now that there are two
	w.members([]demo.Member{alice, first, second})
	w.await(chatText(second.Label + " has joined"))

	// alice writes privately to the second bob only.
	r, _, err := a.c.Publish(ctx, "/service/privatechat", map[string]string{"room": room, "peer": second.ID, "chat": "psst"}, nil)
	if err != nil || !r.Successful() {
		t.Fatalf("private message: %v, %v", r, err)
	}
	got := b2.await(func(m gatewaytest.Message) bool {
		return m.Channel() == room && strings.Contains(fmt.Sprint(m["data"]), "psst")
	})
	var pm map[string]string
	decode(t, got, &pm)
	want := map[string]string{"user": "alice", "member": alice.ID, "chat": "psst", "peer": second.Label, "peerMember": second.ID, "scope": "private"}
	if fmt.Sprint(pm) != fmt.Sprint(want) {
		t.Errorf("private message = %v; want %v", pm, want)
	}
	// A public message sent after it: once the first bob has it, the
	// private one would have arrived too had it been sent to him.
	if r, _, err := a.c.Publish(ctx, room, map[string]string{"user": "alice", "chat": "after"}, nil); err != nil || !r.Successful() {
		t.Fatalf("public message: %v, %v", r, err)
	}
	b1.await(chatText("after"))
	for _, m := range b1.events {
		if strings.Contains(fmt.Sprint(m["data"]), "psst") {
			t.Errorf("the first bob received the private message: %v", m)
		}
	}
}

// TestMemberLeaves checks that a member whose session is removed, whether
// it disconnects or its connection dies and the session expires, is taken
// off the member list and announced as leaving, with the reason.
func TestMemberLeaves(t *testing.T) {
	for _, tc := range []struct {
		name       string
		end        func(t *testing.T, p *peer) // ends the session, or lets it expire
		wantText   string
		wantReason string
	}{
		{
			name: "disconnect",
			end: func(t *testing.T, p *peer) {
				if r, _, err := p.c.Disconnect(gatewaytest.Context(t)); err != nil || !r.Successful() {
					t.Fatalf("disconnect: %v, %v", r, err)
				}
			},
			wantText:   "carol has left",
			wantReason: "disconnect",
		},
		{
			name:       "connection died",
			end:        func(*testing.T, *peer) {}, // carol never connects again
			wantText:   "carol has left (connection lost)",
			wantReason: "expired",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			w := newPeer(t, srv, "/members/demo", room)
			dave := w.join("dave")
			carol := newPeer(t, srv)
			c := carol.join("carol")
			w.members([]demo.Member{c, dave})

			tc.end(t, carol)
			left := w.await(chatText(tc.wantText))
			var n map[string]string
			decode(t, left, &n)
			if n["membership"] != "leave" || n["member"] != c.ID || n["user"] != "carol" || n["reason"] != tc.wantReason {
				t.Errorf("leave notice = %v; want membership leave, member %s, user carol, reason %s", n, c.ID, tc.wantReason)
			}
			w.members([]demo.Member{dave})
		})
	}
}

// TestHandlerServesCometD checks that the page loads the official CometD
// client, served with its license next to it, as ES modules.
func TestHandlerServesCometD(t *testing.T) {
	srv := newServer(t)
	base := "http://" + srv.Addr().String()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, tc := range []struct{ path, wantType, wantBody string }{
		{"/", "text/html", `<script type="module" src="chat.js">`},
		{"/chat.js", "text/javascript", `from './js/cometd/cometd.js'`},
		{"/js/cometd/cometd.js", "text/javascript", `export * from "./Client.js"`},
		{"/js/cometd/Client.js", "text/javascript", "export class CometD"},
		{"/js/cometd/LICENSE", "text/plain", "Apache License"},
	} {
		code, ctype, body := get(tc.path)
		if code != http.StatusOK || !strings.HasPrefix(ctype, tc.wantType) || !strings.Contains(body, tc.wantBody) {
			t.Errorf("GET %s = %d %q %.80q; want 200 %s containing %q", tc.path, code, ctype, body, tc.wantType, tc.wantBody)
		}
	}
	if code, _, _ := get("/bayeux.js"); code != http.StatusNotFound {
		t.Errorf("GET /bayeux.js = %d; want 404 (the hand-written client is gone)", code)
	}
}
