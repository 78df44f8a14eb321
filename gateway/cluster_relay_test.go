package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/cluster"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
)

// roundRobin is a polling client whose every request goes to the next
// node in turn, as through a load balancer without sticky sessions. Its
// cookie jar is shared by every request (the nodes all listen on
// 127.0.0.1, and cookies ignore ports), as a browser's would be.
type roundRobin struct {
	nodes    []*gt.Server
	jsonp    bool // callback-polling instead of long-polling
	http     *http.Client
	clientID string
	turn     atomic.Int64
}

func newRoundRobin(nodes []*gt.Server, jsonp bool) *roundRobin {
	jar, _ := cookiejar.New(nil)
	return &roundRobin{nodes: nodes, jsonp: jsonp, http: &http.Client{Jar: jar, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

// connType is the connection type the client uses.
func (r *roundRobin) connType() string {
	if r.jsonp {
		return "callback-polling"
	}
	return "long-polling"
}

// to returns a client of node i sharing the cookie jar and session.
func (r *roundRobin) to(i int) *gt.Client {
	return &gt.Client{URL: r.nodes[i].URL, HTTP: r.http, ClientID: r.clientID}
}

// next returns the node the next request goes to, and a client of it.
func (r *roundRobin) next() (int, *gt.Client) {
	i := int(r.turn.Add(1)-1) % len(r.nodes)
	return i, r.to(i)
}

// call sends one message on channel through c and returns its reply and
// every message of the response.
func (r *roundRobin) call(ctx context.Context, c *gt.Client, channel string, fields gt.Message) (gt.Message, []gt.Message, error) {
	m := c.NewMessage(channel, fields)
	var msgs []gt.Message
	var err error
	if r.jsonp {
		msgs, _, err = c.JSONP(ctx, "cb", []gt.Message{m})
	} else {
		msgs, _, err = c.Send(ctx, m)
	}
	if err != nil {
		return nil, msgs, err
	}
	reply, ok := gt.FindReply(msgs, channel, m.Str("id"))
	if !ok {
		return nil, msgs, fmt.Errorf("no reply to %s in %v", channel, msgs)
	}
	return reply, msgs, nil
}

// handshake handshakes through node i and keeps the clientId.
func (r *roundRobin) handshake(t *testing.T, i int) {
	t.Helper()
	reply, _, err := r.call(gt.Context(t), r.to(i), "/meta/handshake", gt.Message{"version": "1.0", "supportedConnectionTypes": []string{r.connType()}})
	if err != nil || !reply.Successful() {
		t.Fatalf("handshake: %v %v", reply, err)
	}
	r.clientID = reply.Str("clientId")
}

// owner returns the node owning the client's session.
func (r *roundRobin) owner(t *testing.T) *gt.Server {
	t.Helper()
	for _, n := range r.nodes {
		if n.Node().ID() == cluster.OwnerOf(r.clientID) {
			return n
		}
	}
	t.Fatalf("no node owns %s", r.clientID)
	return nil
}

func relayCluster(t testing.TB, configure func(i int, c *config.Config)) []*gt.Server {
	nats := gt.StartNATS(t)
	return gt.NewCluster(t, nats, 3, func(i int, c *config.Config) {
		*c.Demo.Enabled = false
		if configure != nil {
			configure(i, c)
		}
	})
}

type connectResult struct {
	node  int
	reply gt.Message
	msgs  []gt.Message
	err   error
}

// startConnect sends a /meta/connect through the next node in a goroutine.
func (r *roundRobin) startConnect(ctx context.Context) <-chan connectResult {
	ch := make(chan connectResult, 1)
	i, c := r.next()
	go func() {
		reply, msgs, err := r.call(ctx, c, "/meta/connect", gt.Message{"connectionType": r.connType()})
		ch <- connectResult{i, reply, msgs, err}
	}()
	return ch
}

// TestClusterRelayRoundRobin: a long-polling client, and a callback-polling
// one, whose every request goes to the next of three nodes subscribes
// through one node, has its connects held on the owner whichever node
// they land on, and receives every message published on the three nodes
// exactly once and in order.
func TestClusterRelayRoundRobin(t *testing.T) {
	for _, jsonp := range []bool{false, true} {
		t.Run(map[bool]string{false: "long-polling", true: "callback-polling"}[jsonp], func(t *testing.T) {
			nodes := relayCluster(t, nil)
			ctx := gt.Context(t)
			rr := newRoundRobin(nodes, jsonp)
			rr.handshake(t, 0)
			owner := rr.owner(t)
			if res := <-rr.startConnect(ctx); res.err != nil || !res.reply.Successful() {
				t.Fatalf("first connect: %v %v", res.reply, res.err)
			}
			_, sc := rr.next()
			if reply, _, err := rr.call(ctx, sc, "/meta/subscribe", gt.Message{"subscription": "/room/a"}); err != nil || !reply.Successful() {
				t.Fatalf("subscribe: %v %v", reply, err)
			}
			pubs := make([]*gt.Client, len(nodes))
			for i, n := range nodes {
				pubs[i] = n.Client()
				if _, _, err := pubs[i].Handshake(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			next := make([]int, len(nodes))
			got := 0
			take := func(res connectResult) {
				t.Helper()
				if res.err != nil || !res.reply.Successful() {
					t.Fatalf("connect through node%d: %v %v", res.node, res.reply, res.err)
				}
				for _, m := range gt.Events(res.msgs) {
					d := m.Obj("data")
					from, k := int(d["from"].(float64)), int(d["k"].(float64))
					if k != next[from] {
						t.Fatalf("from node %d got k=%d, want %d (duplicate, lost or out of order)", from, k, next[from])
					}
					next[from]++
					got++
				}
			}
			publish := func(from, k int) {
				t.Helper()
				if r, _, err := pubs[from].Publish(ctx, "/room/a", gt.Message{"from": from, "k": k}, nil); err != nil || !r.Successful() {
					t.Fatalf("publish: %v %v", r, err)
				}
			}
			// Held: each connect waits on the owner until a message comes.
			const rounds = 6
			for k := 0; k < rounds; k++ {
				done := rr.startConnect(ctx)
				gt.Eventually(t, 10*time.Second, func() error {
					if s := owner.Engine().Session(rr.clientID); s == nil || !s.Held() {
						return errors.New("connect not held on the owner")
					}
					return nil
				})
				select {
				case res := <-done:
					t.Fatalf("connect through node%d answered before any message: %v", res.node, res.msgs)
				default:
				}
				publish(k%len(nodes), next[k%len(nodes)]+0)
				take(<-done)
			}
			// A burst while no connect is held: all of it arrives, in order.
			const per = 10
			want := got
			for from := range nodes {
				for k := 0; k < per; k++ {
					publish(from, next[from]+k)
					want++
				}
			}
			for got < want {
				take(<-rr.startConnect(ctx))
			}
			var in, out int64
			for _, n := range nodes {
				in += n.Node().RelayStats().In.Load()
				out += n.Node().RelayStats().Out.Load()
			}
			if owner.Node().RelayStats().In.Load() == 0 || in != out || out == 0 {
				t.Fatalf("relayed in %d (owner %d), out %d: want the owner to serve every relayed request", in, owner.Node().RelayStats().In.Load(), out)
			}
		})
	}
}

// TestClusterRelayUnsubscribeDisconnect: unsubscribe and disconnect sent
// through nodes other than the owner take effect on the owner.
func TestClusterRelayUnsubscribeDisconnect(t *testing.T) {
	nodes := relayCluster(t, nil)
	ctx := gt.Context(t)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	owner := rr.owner(t)
	s := owner.Engine().Session(rr.clientID)
	for i, ch := range []string{"/room/a", "/room/b"} {
		if reply, _, err := rr.call(ctx, rr.to(1+i), "/meta/subscribe", gt.Message{"subscription": ch}); err != nil || !reply.Successful() {
			t.Fatalf("subscribe %s: %v %v", ch, reply, err)
		}
	}
	if subs := s.Subscriptions(); len(subs) != 2 {
		t.Fatalf("subscriptions on the owner = %v; want 2", subs)
	}
	if reply, _, err := rr.call(ctx, rr.to(2), "/meta/unsubscribe", gt.Message{"subscription": "/room/a"}); err != nil || !reply.Successful() {
		t.Fatalf("unsubscribe: %v %v", reply, err)
	}
	if subs := s.Subscriptions(); len(subs) != 1 || subs[0] != "/room/b" {
		t.Fatalf("subscriptions on the owner after unsubscribe = %v; want [/room/b]", subs)
	}
	if reply, _, err := rr.call(ctx, rr.to(1), "/meta/disconnect", nil); err != nil || !reply.Successful() {
		t.Fatalf("disconnect: %v %v", reply, err)
	}
	if owner.Engine().Session(rr.clientID) != nil || !s.Closed() {
		t.Fatalf("session still open on the owner after a disconnect through another node")
	}
}

// TestClusterRelayCookieMismatch: a clientId sent through another node by
// a client without the session's BAYEUX_BROWSER cookie is refused as on
// one node, and the session is untouched.
func TestClusterRelayCookieMismatch(t *testing.T) {
	nodes := relayCluster(t, nil)
	ctx := gt.Context(t)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	thief := nodes[1].Client() // its own cookie jar
	thief.ClientID = rr.clientID
	reply, _, err := thief.Subscribe(ctx, "/room/a")
	if err != nil {
		t.Fatal(err)
	}
	if reply.Successful() || reply.Str("error")[:3] != "402" {
		t.Fatalf("subscribe with another browser's clientId through another node = %v; want 402", reply)
	}
	if subs := rr.owner(t).Engine().Session(rr.clientID).Subscriptions(); len(subs) != 0 {
		t.Fatalf("owner's session got subscriptions %v from another browser", subs)
	}
	// The session's own browser, through the same node, is accepted.
	if reply, _, err := rr.call(ctx, rr.to(1), "/meta/subscribe", gt.Message{"subscription": "/room/a"}); err != nil || !reply.Successful() {
		t.Fatalf("subscribe with the cookie: %v %v", reply, err)
	}
}

// TestClusterRelayOwnerShutdown: a connect held on its owner through
// another node is answered with advice to handshake again when the owner
// shuts down; the next request through another node gets 402 with the
// same advice, and the client handshakes again there.
func TestClusterRelayOwnerShutdown(t *testing.T) {
	nodes := relayCluster(t, nil)
	ctx := gt.Context(t)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	owner := rr.owner(t)
	if reply, _, err := rr.call(ctx, rr.to(1), "/meta/connect", gt.Message{"connectionType": "long-polling"}); err != nil || !reply.Successful() {
		t.Fatalf("first connect: %v %v", reply, err)
	}
	rr.turn.Store(1)
	done := rr.startConnect(ctx) // through node1, held on node0
	gt.Eventually(t, 10*time.Second, func() error {
		if s := owner.Engine().Session(rr.clientID); s == nil || !s.Held() {
			return errors.New("connect not held on the owner")
		}
		return nil
	})
	if err := owner.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("held connect: %v", res.err)
	}
	if res.reply.Successful() || res.reply.Obj("advice").Str("reconnect") != "handshake" {
		t.Fatalf("held connect answered %v; want a failure with reconnect handshake", res.reply)
	}
	handshakesAgainOn(t, rr, nodes, 2, func(st *cluster.RelayStats) int64 { return st.NoResponders.Load() })
}

// handshakesAgainOn sends a connect of rr's session through node via,
// whose relay to the owner must fail (and be counted by count): the
// client gets 402 with advice to handshake, and its new session is owned
// by node via.
func handshakesAgainOn(t *testing.T, rr *roundRobin, nodes []*gt.Server, via int, count func(*cluster.RelayStats) int64) {
	t.Helper()
	reply, _, err := rr.call(gt.Context(t), rr.to(via), "/meta/connect", gt.Message{"connectionType": "long-polling"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Successful() || reply.Str("error")[:3] != "402" || reply.Obj("advice").Str("reconnect") != "handshake" {
		t.Fatalf("connect through node%d = %v; want 402 with reconnect handshake", via, reply)
	}
	if n := count(nodes[via].Node().RelayStats()); n != 1 {
		t.Fatalf("node%d counted %d failed relays; want 1", via, n)
	}
	rr.handshake(t, via)
	if o := rr.owner(t); o != nodes[via] {
		t.Fatalf("new session owned by %s; want node%d", o.Node().Name(), via)
	}
}

// TestClusterRelayClientGone: when the client of a relayed held connect
// goes away, the hold on the owner ends.
func TestClusterRelayClientGone(t *testing.T) {
	nodes := relayCluster(t, nil)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	owner := rr.owner(t)
	ctx := gt.Context(t)
	if reply, _, err := rr.call(ctx, rr.to(0), "/meta/connect", gt.Message{"connectionType": "long-polling"}); err != nil || !reply.Successful() {
		t.Fatalf("first connect: %v %v", reply, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	rr.turn.Store(1)
	done := rr.startConnect(cctx)
	s := owner.Engine().Session(rr.clientID)
	gt.Eventually(t, 10*time.Second, func() error {
		if !s.Held() {
			return errors.New("connect not held on the owner")
		}
		return nil
	})
	cancel()
	if res := <-done; res.err == nil {
		t.Fatalf("cancelled connect answered %v", res.msgs)
	}
	gt.Eventually(t, 10*time.Second, func() error {
		if s.Held() {
			return errors.New("connect still held on the owner after its client left")
		}
		return nil
	})
}

// TestClusterRelayMaxRelayed: beyond cluster.maxRelayed relayed requests
// served at once, the owner refuses with 503 and counts it.
func TestClusterRelayMaxRelayed(t *testing.T) {
	nodes := relayCluster(t, func(i int, c *config.Config) { c.Cluster.MaxRelayed = 1 })
	ctx := gt.Context(t)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	owner := rr.owner(t)
	if reply, _, err := rr.call(ctx, rr.to(0), "/meta/connect", gt.Message{"connectionType": "long-polling"}); err != nil || !reply.Successful() {
		t.Fatalf("first connect: %v %v", reply, err)
	}
	if reply, _, err := rr.call(ctx, rr.to(0), "/meta/subscribe", gt.Message{"subscription": "/room/a"}); err != nil || !reply.Successful() {
		t.Fatalf("subscribe: %v %v", reply, err)
	}
	rr.turn.Store(1)
	done := rr.startConnect(ctx) // takes the only slot while held
	gt.Eventually(t, 10*time.Second, func() error {
		if !owner.Engine().Session(rr.clientID).Held() {
			return errors.New("connect not held on the owner")
		}
		return nil
	})
	_, _, err := rr.call(ctx, rr.to(2), "/room/a", gt.Message{"data": "x"})
	var se *gt.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("relayed publish beyond maxRelayed: %v; want HTTP 503", err)
	}
	if n := owner.Node().RelayStats().Refused.Load(); n != 1 {
		t.Fatalf("refused = %d; want 1", n)
	}
	// The held connect is still served: a publish by a client of the
	// owner ends it.
	pub := owner.Client()
	if _, _, err := pub.Handshake(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if reply, _, err := pub.Publish(ctx, "/room/a", "x", nil); err != nil || !reply.Successful() {
		t.Fatalf("local publish: %v %v", reply, err)
	}
	if res := <-done; res.err != nil || !res.reply.Successful() {
		t.Fatalf("held connect: %v %v", res.reply, res.err)
	}
}

// BenchmarkClusterRelayPublish measures a publish (no subscribers) sent to
// the session's owner (local) and to another node (relayed over NATS):
// the difference is what a relay adds per non-held request.
func BenchmarkClusterRelayPublish(b *testing.B) {
	nodes := relayCluster(b, nil)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	ctx := context.Background()
	c := &gt.Client{URL: nodes[0].URL, HTTP: hc}
	if _, _, err := c.Handshake(ctx, nil); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		node int
	}{{"local", 0}, {"relayed", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			pc := &gt.Client{URL: nodes[bc.node].URL, HTTP: hc, ClientID: c.ClientID}
			b.ReportAllocs()
			for b.Loop() {
				if r, _, err := pc.Publish(ctx, "/bench", 1, nil); err != nil || !r.Successful() {
					b.Fatalf("publish: %v %v", r, err)
				}
			}
		})
	}
}

// TestClusterRelayRelayingNodeShutdown: a node that shuts down while it
// relays a connect held on another node gets it answered at once by the
// owner (not after the hold), and the session lives on.
func TestClusterRelayRelayingNodeShutdown(t *testing.T) {
	nodes := relayCluster(t, func(i int, c *config.Config) { c.Bayeux.Timeout = config.Duration(time.Minute) })
	ctx := gt.Context(t)
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	owner := rr.owner(t)
	if reply, _, err := rr.call(ctx, rr.to(0), "/meta/connect", gt.Message{"connectionType": "long-polling"}); err != nil || !reply.Successful() {
		t.Fatalf("first connect: %v %v", reply, err)
	}
	rr.turn.Store(1)
	done := rr.startConnect(ctx) // through node1, held on node0
	s := owner.Engine().Session(rr.clientID)
	gt.Eventually(t, 10*time.Second, func() error {
		if !s.Held() {
			return errors.New("connect not held on the owner")
		}
		return nil
	})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[1].Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown of the relaying node: %v", err)
	}
	res := <-done
	if res.err != nil || !res.reply.Successful() {
		t.Fatalf("held connect through the node that shut down: %v %v", res.reply, res.err)
	}
	if s.Held() || s.Closed() {
		t.Fatalf("owner's session held=%v closed=%v; want open and not held", s.Held(), s.Closed())
	}
}

// TestClusterRelayNATSDown: with NATS unreachable, a request through a
// node other than the owner is answered there (402, handshake again) and
// counted; the client's new session then lives on that node.
func TestClusterRelayNATSDown(t *testing.T) {
	nats := gt.StartNATS(t)
	nodes := gt.NewCluster(t, nats, 2, func(i int, c *config.Config) { *c.Demo.Enabled = false })
	rr := newRoundRobin(nodes, false)
	rr.handshake(t, 0)
	nats.Stop()
	gt.Eventually(t, 10*time.Second, func() error {
		if nodes[1].Node().Connected() {
			return errors.New("node1 still connected to NATS")
		}
		return nil
	})
	handshakesAgainOn(t, rr, nodes, 1, func(st *cluster.RelayStats) int64 { return st.Unreachable.Load() })
}

// TestClusterRelayMultipleClients: two tabs of one browser (one cookie
// jar) with sessions on the same owner, their connects sent through two
// other nodes: the second gets the multiple-clients advice, enforced on
// the owner as on one node.
func TestClusterRelayMultipleClients(t *testing.T) {
	nodes := relayCluster(t, nil)
	ctx := gt.Context(t)
	tabA := newRoundRobin(nodes, false)
	tabA.handshake(t, 0)
	tabB := &roundRobin{nodes: nodes, http: tabA.http} // same browser
	tabB.handshake(t, 0)
	for _, tab := range []*roundRobin{tabA, tabB} {
		if reply, _, err := tab.call(ctx, tab.to(0), "/meta/connect", gt.Message{"connectionType": "long-polling"}); err != nil || !reply.Successful() {
			t.Fatalf("first connect: %v %v", reply, err)
		}
	}
	tabA.turn.Store(1)
	done := tabA.startConnect(ctx) // through node1, held on node0
	gt.Eventually(t, 10*time.Second, func() error {
		if !tabA.owner(t).Engine().Session(tabA.clientID).Held() {
			return errors.New("tab A's connect not held on the owner")
		}
		return nil
	})
	reply, _, err := tabB.call(ctx, tabB.to(2), "/meta/connect", gt.Message{"connectionType": "long-polling"})
	if err != nil {
		t.Fatal(err)
	}
	if mc, _ := reply.Obj("advice")["multiple-clients"].(bool); !mc {
		t.Fatalf("second tab's connect through node2 = %v; want the multiple-clients advice", reply)
	}
	select {
	case res := <-done:
		t.Fatalf("tab A's held connect answered: %v %v", res.msgs, res.err)
	default:
	}
}

// TestClusterRelayWebSocket: a client that handshakes over HTTP on one
// node and opens its websocket on another (as Faye does behind a
// round-robin balancer) is served through the websocket: its frames are
// relayed to the session's owner, its connect is held there, and a
// message published on a third node arrives on the websocket. When the
// owner is gone, the websocket gets 402 with advice to handshake, and the
// handshake on that websocket makes a session of its node.
func TestClusterRelayWebSocket(t *testing.T) {
	nodes := relayCluster(t, nil)
	ctx := gt.Context(t)
	c := nodes[0].Client()
	hs, _, err := c.Handshake(ctx, nil)
	if err != nil || !hs.Successful() {
		t.Fatalf("handshake: %v %v", hs, err)
	}
	u, _ := url.Parse(nodes[0].URL)
	header := http.Header{"Cookie": {cookieHeader(c.HTTP.Jar.Cookies(u))}}
	w, _, err := gt.DialWebSocket(ctx, nodes[1].WSURL, header)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.ClientID = hs.Str("clientId")
	if r, _, err := w.Call(5*time.Second, "/meta/connect", gt.Message{"connectionType": "websocket", "advice": gt.Message{"timeout": 0}}); err != nil || !r.Successful() {
		t.Fatalf("first connect through node1: %v %v", r, err)
	}
	if r, _, err := w.Call(5*time.Second, "/meta/subscribe", gt.Message{"subscription": "/ws/relay"}); err != nil || !r.Successful() {
		t.Fatalf("subscribe through node1: %v %v", r, err)
	}
	if err := w.Send(w.NewMessage("/meta/connect", gt.Message{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	s := nodes[0].Engine().Session(w.ClientID)
	gt.Eventually(t, 10*time.Second, func() error {
		if !s.Held() {
			return errors.New("connect not held on the owner")
		}
		return nil
	})
	if nodes[1].Engine().SessionCount() != 0 {
		t.Fatalf("node1 has %d sessions; the websocket must not have made one", nodes[1].Engine().SessionCount())
	}
	publishVia(t, nodes[2], "/ws/relay", "hello")
	frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/ws/relay" })
	if err != nil {
		t.Fatal(err)
	}
	// It came with the held connect's answer, in one frame.
	last := fmt.Sprint(frames[len(frames)-1])
	if !strings.Contains(last, "hello") || !strings.Contains(last, "/meta/connect") {
		t.Fatalf("frame %s; want the message and the connect reply", last)
	}
	if n := nodes[1].Node().RelayStats().Out.Load(); n < 3 {
		t.Fatalf("node1 relayed %d frames, want >= 3", n)
	}

	// The owner leaves: the next frame gets 402 and handshake advice.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[0].Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	r, _, err := w.Call(10*time.Second, "/meta/connect", gt.Message{"connectionType": "websocket"})
	if err != nil || r.Successful() || r.Str("error")[:3] != "402" || r.Obj("advice").Str("reconnect") != "handshake" {
		t.Fatalf("connect after the owner left: %v %v; want 402 with reconnect handshake", r, err)
	}
	r, _, err = w.Call(5*time.Second, "/meta/handshake", gt.Message{"version": "1.0", "supportedConnectionTypes": []string{"websocket"}})
	if err != nil || !r.Successful() {
		t.Fatalf("handshake on the websocket: %v %v", r, err)
	}
	if nodes[1].Engine().Session(r.Str("clientId")) == nil {
		t.Fatalf("the new session %s does not live on node1", r.Str("clientId"))
	}
}

func cookieHeader(cs []*http.Cookie) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name + "=" + c.Value)
	}
	return b.String()
}
