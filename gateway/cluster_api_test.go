package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// apiCluster starts three nodes (demo off, 1 s request timeout) and
// waits until each knows the other two; it returns them with a gRPC
// client of each one's control API.
func apiCluster(t testing.TB) ([]*gt.Server, []gatewayv1.GatewayClient) {
	t.Helper()
	ns := gt.StartNATS(t)
	nodes := gt.NewCluster(t, ns, 3, func(i int, c *config.Config) {
		*c.Demo.Enabled = false
		c.Cluster.RequestTimeout = config.Duration(time.Second)
	})
	var clients []gatewayv1.GatewayClient
	for _, n := range nodes {
		conn, err := grpc.NewClient(n.APIAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients = append(clients, gatewayv1.NewGatewayClient(conn))
	}
	gt.Eventually(t, 10*time.Second, func() error {
		for i, n := range nodes {
			if got := len(n.Node().Nodes()); got != len(nodes) {
				return fmt.Errorf("node%d knows %d nodes, want %d", i, got, len(nodes))
			}
		}
		return nil
	})
	return nodes, clients
}

// getJSON GETs url and decodes its JSON body into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// TestClusterAPIListsEveryNode: ListSessions, ListChannels and Stats
// through node0 see the sessions and subscriptions of node1 and node2.
func TestClusterAPIListsEveryNode(t *testing.T) {
	nodes, api := apiCluster(t)
	ctx := gt.Context(t)
	w1 := wsSubscriber(t, nodes[1], "/room/one")
	w2 := wsSubscriber(t, nodes[2], "/room/one", "/room/two")

	ls, err := api[0].ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.UnreachableNodes) != 0 {
		t.Errorf("unreachable %v, want none", ls.UnreachableNodes)
	}
	byID := map[string]*gatewayv1.Session{}
	for _, s := range ls.Sessions {
		byID[s.ClientId] = s
	}
	for id, node := range map[string]string{w1.ClientID: "node1", w2.ClientID: "node2"} {
		s := byID[id]
		if s == nil {
			t.Fatalf("ListSessions through node0: no session %s of %s in %v", id, node, ls.Sessions)
		}
		if s.Node != node {
			t.Errorf("session %s: node %q, want %q", id, s.Node, node)
		}
	}
	if got := byID[w2.ClientID].Subscriptions; !slices.Equal(got, []string{"/room/one", "/room/two"}) {
		t.Errorf("node2's session subscriptions %v", got)
	}

	// The REST mapping carries the same: each session's node, and the
	// unreachable nodes (none).
	var rest struct {
		Sessions []struct {
			ClientID string `json:"clientId"`
			Node     string `json:"node"`
		} `json:"sessions"`
		UnreachableNodes []string `json:"unreachableNodes"`
	}
	if err := getJSON(ctx, "http://"+nodes[0].APIAddr().String()+"/v1/sessions", &rest); err != nil {
		t.Fatal(err)
	}
	restNodes := map[string]string{}
	for _, s := range rest.Sessions {
		restNodes[s.ClientID] = s.Node
	}
	if restNodes[w2.ClientID] != "node2" || rest.UnreachableNodes == nil || len(rest.UnreachableNodes) != 0 {
		t.Errorf("GET /v1/sessions through node0: %+v; want node2's session with its node, unreachableNodes []", rest)
	}

	lc, err := api[0].ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "/room/*"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{}
	for _, c := range lc.Channels {
		counts[c.Name] = c.Subscribers
	}
	if counts["/room/one"] != 2 || counts["/room/two"] != 1 || len(lc.UnreachableNodes) != 0 {
		t.Errorf("ListChannels through node0: %v (unreachable %v); want /room/one 2, /room/two 1", counts, lc.UnreachableNodes)
	}

	st, err := api[0].Stats(ctx, &gatewayv1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sessions int64
	for _, n := range st.Nodes {
		names = append(names, n.Node)
		sessions += n.Sessions
	}
	if !slices.Equal(names, []string{"node0", "node1", "node2"}) {
		t.Errorf("Stats nodes %v, want node0, node1, node2", names)
	}
	if st.Sessions != sessions || st.Sessions < 2 || st.Nodes[2].Sessions < 1 {
		t.Errorf("Stats sessions %d, per node sum %d; want the sum, with node2's", st.Sessions, sessions)
	}
}

// TestClusterAPIDeliverAndDisconnect: through node0, a Deliver to a
// client id reaches its session on node2, a Deliver to a user reaches
// each of its sessions on node1 and node2 once, and a Disconnect of a
// client id ends it on node2.
func TestClusterAPIDeliverAndDisconnect(t *testing.T) {
	nodes, api := apiCluster(t)
	ctx := gt.Context(t)
	w1 := wsSubscriber(t, nodes[1])
	w2 := wsSubscriber(t, nodes[2])
	nodes[1].Engine().Session(w1.ClientID).SetUser("alice")
	nodes[2].Engine().Session(w2.ClientID).SetUser("alice")

	next := func(w *gt.WSClient, who string) gt.Message {
		t.Helper()
		frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/private/x" })
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		var got []gt.Message
		for _, m := range frames[len(frames)-1] {
			if m.Channel() == "/private/x" {
				got = append(got, m)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s: got %v, want one message", who, got)
		}
		return got[0]
	}

	r, err := api[0].Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: w2.ClientID, Channel: "/private/x", DataJson: []byte(`"to-client"`)})
	if err != nil || r.Sessions != 1 {
		t.Fatalf("Deliver to node2's client through node0: %v, %v; want 1 session", r, err)
	}
	if m := next(w2, "client on node2"); fmt.Sprint(m["data"]) != "to-client" {
		t.Errorf("client on node2 got %v", m)
	}

	r, err = api[0].Deliver(ctx, &gatewayv1.DeliverRequest{UserId: "alice", Channel: "/private/x", DataJson: []byte(`"to-user"`)})
	if err != nil || r.Sessions != 2 || len(r.UnreachableNodes) != 0 {
		t.Fatalf("Deliver to a user on node1 and node2: %v, %v; want 2 sessions", r, err)
	}
	// Each session gets it, then the marker: nothing twice in between.
	for i, w := range []*gt.WSClient{w1, w2} {
		if m := next(w, fmt.Sprintf("alice's session %d", i)); fmt.Sprint(m["data"]) != "to-user" {
			t.Errorf("alice's session %d got %v", i, m)
		}
		if _, err := api[0].Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: w.ClientID, Channel: "/private/x", DataJson: []byte(`"end"`)}); err != nil {
			t.Fatal(err)
		}
		if m := next(w, fmt.Sprintf("alice's session %d", i)); fmt.Sprint(m["data"]) != "end" {
			t.Errorf("alice's session %d got %v, want the end marker (a duplicate?)", i, m)
		}
	}

	// Invalid data is refused before it travels.
	if _, err := api[0].Deliver(ctx, &gatewayv1.DeliverRequest{UserId: "alice", Channel: "/private/x", DataJson: []byte(`{bad`)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Deliver of invalid JSON: %v, want InvalidArgument", err)
	}

	d, err := api[0].Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: w2.ClientID})
	if err != nil || d.Sessions != 1 {
		t.Fatalf("Disconnect of node2's client through node0: %v, %v", d, err)
	}
	if _, err := w2.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/meta/disconnect" }); err != nil {
		t.Fatalf("client on node2 was not told of its disconnect: %v", err)
	}
	if _, err := api[0].Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: w2.ClientID}); status.Code(err) != codes.NotFound {
		t.Errorf("second Disconnect: %v, want NotFound", err)
	}
	if _, err := api[0].GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: w1.ClientID}); err != nil {
		t.Errorf("GetSession of node1's client through node0: %v", err)
	}
}

// TestClusterAPIPublishReachesAll: a control-API publish on node0 reaches
// subscribers on every node.
func TestClusterAPIPublishReachesAll(t *testing.T) {
	nodes, api := apiCluster(t)
	ctx := gt.Context(t)
	var subs []*gt.WSClient
	for _, n := range nodes {
		subs = append(subs, wsSubscriber(t, n, "/news"))
	}
	if _, err := api[0].Publish(ctx, &gatewayv1.PublishRequest{Channel: "/news", DataJson: []byte(`"hello"`)}); err != nil {
		t.Fatal(err)
	}
	for i, w := range subs {
		frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/news" })
		if err != nil {
			t.Fatalf("subscriber on node%d: %v", i, err)
		}
		for _, m := range frames[len(frames)-1] {
			if m.Channel() == "/news" && fmt.Sprint(m["data"]) != "hello" {
				t.Errorf("subscriber on node%d got %v", i, m)
			}
		}
	}
}

// TestClusterAPIStoppedNodes: a node whose NATS connection died is
// reported unreachable within the request timeout, not skipped; a node
// that shut down (and said so) is simply gone from the answers.
func TestClusterAPIStoppedNodes(t *testing.T) {
	nodes, api := apiCluster(t)
	ctx := gt.Context(t)
	w1 := wsSubscriber(t, nodes[1])
	w2 := wsSubscriber(t, nodes[2])

	// node2 still counts as live (its heartbeats have not expired), and
	// node1 answers: node0 waits for node2 until the timeout.
	nodes[2].Node().Conn().Close()
	ls, err := api[0].ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ls.UnreachableNodes, []string{"node2"}) || len(ls.Sessions) != 1 || ls.Sessions[0].ClientId != w1.ClientID {
		t.Fatalf("node2 cut off from NATS: sessions %v, unreachable %v; want node1's session and node2 reported", ls.Sessions, ls.UnreachableNodes)
	}
	// Its sessions are gone for the cluster: nothing answers for node2.
	if _, err := api[0].Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: w2.ClientID}); status.Code(err) != codes.NotFound {
		t.Errorf("Disconnect of a session of a node gone from NATS: %v, want NotFound", err)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[1].Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, 10*time.Second, func() error {
		for _, n := range nodes[0].Node().Nodes() {
			if n.Name == "node1" {
				return fmt.Errorf("node0 still lists node1")
			}
		}
		return nil
	})
	ls, err = api[0].ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ls.UnreachableNodes, "node1") || len(ls.Sessions) != 0 {
		t.Fatalf("after node1 left: sessions %v, unreachable %v; want node1 simply gone", ls.Sessions, ls.UnreachableNodes)
	}
}

// TestClusterAPIPeerRequestsValidated: a Deliver that arrives over NATS
// (here from a raw NATS client, not a node) is checked as an API request
// is: data that is not JSON in UTF-8, or over api.maxDataBytes, is refused
// and never reaches the session.
func TestClusterAPIPeerRequestsValidated(t *testing.T) {
	nodes, api := apiCluster(t)
	ctx := gt.Context(t)
	w := wsSubscriber(t, nodes[1])
	nc, err := nats.Connect(nodes[0].Config.Cluster.NATS.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subject := nodes[0].Config.Cluster.SubjectPrefix + ".n." + nodes[1].Node().ID() + ".api.Deliver"
	for name, data := range map[string][]byte{
		"invalid UTF-8": []byte("\"\xff\""),
		"not JSON":      []byte("{"),
		"too large":     []byte(`"` + strings.Repeat("x", nodes[1].Config.API.MaxDataBytes) + `"`),
	} {
		req, _ := proto.Marshal(&gatewayv1.DeliverRequest{ClientId: w.ClientID, Channel: "/private/x", DataJson: data})
		m, err := nc.RequestWithContext(ctx, subject, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.Data) < 9 || string(m.Data[:8]) != nodes[1].Node().ID() || codes.Code(m.Data[8]) != codes.InvalidArgument {
			t.Errorf("%s: reply %q; want node1's id and InvalidArgument", name, m.Data)
		}
	}
	if _, err := api[0].Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: w.ClientID, Channel: "/private/x", DataJson: []byte(`"end"`)}); err != nil {
		t.Fatal(err)
	}
	frames, err := w.ReadUntil(10*time.Second, func(m gt.Message) bool { return m.Channel() == "/private/x" })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		for _, m := range f {
			if m.Channel() == "/private/x" && fmt.Sprint(m["data"]) != "end" {
				t.Errorf("the session got %v; want only the valid delivery", m)
			}
		}
	}
}

// BenchmarkClusterListSessions measures a ListSessions through node0's
// gRPC API gathering from two other nodes (one long-polling session on
// each node), on loopback with NATS in process.
func BenchmarkClusterListSessions(b *testing.B) {
	nodes, api := apiCluster(b)
	ctx := gt.Context(b)
	for _, n := range nodes {
		if _, _, err := n.Client().Handshake(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := api[0].ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
		if err != nil || len(r.Sessions) != len(nodes) {
			b.Fatalf("ListSessions: %v, %v", r, err)
		}
	}
}
