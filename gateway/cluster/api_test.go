package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/cluster"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
)

// startNode starts a node on ns with a heartbeat so slow that no node
// expires during the test: only heartbeats and leaving notices move the
// node table. Its request timeout leaves a loaded machine (the race
// detector, other packages' tests) room to answer; only the node that
// never answers waits it out.
func startNode(t *testing.T, ns *gt.NATS, name string, h func(ctx context.Context, method string, req []byte) []byte) *cluster.Node {
	t.Helper()
	n := cluster.New(cluster.Config{Name: name, URLs: []string{ns.URL}, Heartbeat: time.Hour, RequestTimeout: 3 * time.Second})
	if h != nil {
		n.HandleAPI(h)
	}
	if err := n.Start(gt.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func knows(n *cluster.Node, want int) func() error {
	return func() error {
		if got := len(n.Nodes()); got != want {
			return fmt.Errorf("%s knows %d nodes, want %d", n.Name(), got, want)
		}
		return nil
	}
}

// TestPresenceJoinAndLeave: nodes learn each other from their first
// heartbeats, and a node that closes is gone from the others' tables at
// once through its leaving notice (the heartbeat here is an hour, so no
// expiry can explain it).
func TestPresenceJoinAndLeave(t *testing.T) {
	ns := gt.StartNATS(t)
	a := startNode(t, ns, "a", nil)
	b := startNode(t, ns, "b", nil)
	gt.Eventually(t, 10*time.Second, knows(a, 2))
	gt.Eventually(t, 10*time.Second, knows(b, 2))
	if err := b.Close(gt.Context(t)); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, 10*time.Second, knows(a, 1))
}

// TestGatherAndAsk: Gather collects every other node's answer and names
// the live node that does not answer; Ask reaches one node, and a node id
// nobody answers for is ErrNodeGone.
func TestGatherAndAsk(t *testing.T) {
	ns := gt.StartNATS(t)
	echo := func(name string) func(context.Context, string, []byte) []byte {
		return func(_ context.Context, method string, req []byte) []byte {
			return []byte(name + ":" + method + ":" + string(req))
		}
	}
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	a := startNode(t, ns, "a", echo("a"))
	b := startNode(t, ns, "b", echo("b"))
	startNode(t, ns, "c", func(ctx context.Context, _ string, _ []byte) []byte {
		select { // never answers in time
		case <-ctx.Done():
		case <-block:
		}
		return nil
	})
	gt.Eventually(t, 10*time.Second, knows(a, 3))

	ctx := gt.Context(t)
	got := map[string]string{}
	unreachable := a.Gather(ctx, "Stats", []byte("q"), func(node string, reply []byte) { got[node] = string(reply) })
	if len(got) != 1 || got["b"] != "b:Stats:q" {
		t.Errorf("Gather replies %v, want b's only (a answers for itself)", got)
	}
	if len(unreachable) != 1 || unreachable[0] != "c" {
		t.Errorf("Gather unreachable %v, want [c]", unreachable)
	}

	reply, err := a.Ask(ctx, b.ID(), "GetSession", []byte("id"))
	if err != nil || string(reply) != "b:GetSession:id" {
		t.Errorf("Ask(b) = %q, %v", reply, err)
	}
	if _, err := a.Ask(ctx, "abcdefgh", "GetSession", nil); !errors.Is(err, cluster.ErrNodeGone) {
		t.Errorf("Ask(unknown node) = %v, want ErrNodeGone", err)
	}
	if _, err := a.Ask(ctx, b.ID(), "bad.method", nil); !errors.Is(err, cluster.ErrNodeGone) {
		t.Errorf("Ask(bad method) = %v, want refused", err)
	}
}
