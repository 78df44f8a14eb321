package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestHeartbeatValidation: heartbeats that are too large, not JSON, or
// carry a bad id or name never enter the node table; a good one does, and
// its leaving notice removes it.
func TestHeartbeatValidation(t *testing.T) {
	n := New(Config{Name: "self"})
	cases := []struct {
		name string
		data string
		want int // nodes known besides self
	}{
		{"not JSON", `{"id":`, 0},
		{"too large", `{"id":"abcdefgh","name":"` + strings.Repeat("x", maxHeartbeatBytes) + `"}`, 0},
		{"short id", `{"id":"abc","name":"x"}`, 0},
		{"id outside the alphabet", `{"id":"ABCDEFGH","name":"x"}`, 0},
		{"control character in name", `{"id":"abcdefgh","name":"a\u0001"}`, 0},
		{"name too long", `{"id":"abcdefgh","name":"` + strings.Repeat("x", maxNodeName+1) + `"}`, 0},
		{"self", `{"id":"` + n.ID() + `","name":"self"}`, 0},
		{"good", `{"id":"abcdefgh","name":"node1","start":1}`, 1},
		{"leaving", `{"id":"abcdefgh","name":"node1","leaving":true}`, 0},
	}
	for _, c := range cases {
		n.onHeartbeat(&nats.Msg{Data: []byte(c.data)})
		if got := len(n.Nodes()) - 1; got != c.want {
			t.Errorf("%s: onHeartbeat(%.40s) leaves %d other nodes; want %d", c.name, c.data, got, c.want)
		}
	}
}

// TestPresenceExpiry: a node that misses three heartbeats is gone.
func TestPresenceExpiry(t *testing.T) {
	n := New(Config{Name: "self", Heartbeat: time.Second})
	n.peers.nodes["abcdefgh"] = &peer{name: "node1", seen: time.Now()}
	n.expire(time.Now().Add(2 * time.Second))
	if got := n.others(); len(got) != 1 {
		t.Fatalf("after two beats: %v, want node1 still live", got)
	}
	n.expire(time.Now().Add(4 * time.Second))
	if got := len(n.peers.nodes); got != 0 {
		t.Fatalf("after four beats: %d nodes, want none", got)
	}
}
