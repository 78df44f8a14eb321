package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Presence bounds: what a heartbeat from another node may carry, and how
// many nodes the table holds.
const (
	maxNodes          = 1024
	maxNodeName       = 128
	maxHeartbeatBytes = 512
	// missedBeats heartbeats missed in a row make a node gone.
	missedBeats = 3
)

// heartbeat is a node's presence notice on P.presence, sent every
// Config.Heartbeat, at Start, and with Leaving set at Close.
type heartbeat struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Start   int64  `json:"start"` // Unix milliseconds
	Leaving bool   `json:"leaving,omitempty"`
}

// NodeInfo describes a node of the cluster as this node knows it.
type NodeInfo struct {
	// ID is the node's id (the start of its session ids).
	ID string
	// Name is its configured name.
	Name string
	// Started is when it started.
	Started time.Time
	// Self marks this node.
	Self bool
}

// peer is another node seen on P.presence.
type peer struct {
	name    string
	started time.Time
	seen    time.Time // the last heartbeat
}

// presence is the table of the other live nodes.
type presence struct {
	mu    sync.Mutex       // guards nodes
	nodes map[string]*peer // node id -> peer
}

// validID reports whether id is a node id: IDLen characters of [a-z2-7].
func validID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// validName reports whether a node name from another node may be shown:
// short, valid UTF-8, no control characters.
func validName(name string) bool {
	if len(name) > maxNodeName || !utf8.ValidString(name) {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// beat publishes this node's heartbeat.
func (n *Node) beat(leaving bool) {
	b, _ := json.Marshal(heartbeat{ID: n.id, Name: n.cfg.Name, Start: n.born.UnixMilli(), Leaving: leaving})
	if err := n.nc.Publish(n.subject("presence"), b); err != nil && !leaving {
		n.log.Debug("cannot publish the heartbeat", "err", err)
	}
}

// heartbeats publishes the heartbeat every Config.Heartbeat until the node
// closes.
func (n *Node) heartbeats() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			n.beat(false)
			n.expire(time.Now())
		}
	}
}

// onHeartbeat records another node's heartbeat. A node seen for the first
// time is answered with this node's own heartbeat at once, so that a node
// that starts learns the others within a round trip.
func (n *Node) onHeartbeat(m *nats.Msg) {
	if len(m.Data) > maxHeartbeatBytes {
		n.stats.PeerInvalid.Add(1)
		return
	}
	var h heartbeat
	if err := json.Unmarshal(m.Data, &h); err != nil || !validID(h.ID) || !validName(h.Name) {
		n.stats.PeerInvalid.Add(1)
		n.log.Debug("invalid heartbeat dropped", "err", err)
		return
	}
	if h.ID == n.id {
		return
	}
	now := time.Now()
	p := &n.peers
	p.mu.Lock()
	old := p.nodes[h.ID]
	switch {
	case h.Leaving:
		delete(p.nodes, h.ID)
	case old != nil:
		old.seen = now
	case len(p.nodes) < maxNodes:
		p.nodes[h.ID] = &peer{name: h.Name, started: time.UnixMilli(h.Start), seen: now}
	default:
		p.mu.Unlock()
		n.log.Warn("node table full: a node is ignored", "limit", maxNodes, "node", h.Name)
		return
	}
	p.mu.Unlock()
	switch {
	case h.Leaving && old != nil:
		n.log.Info("node left the cluster", "peer", h.Name, "peerId", h.ID)
	case !h.Leaving && old == nil:
		n.log.Info("node joined the cluster", "peer", h.Name, "peerId", h.ID)
		n.beat(false)
	}
}

// expire forgets the nodes that missed missedBeats heartbeats.
func (n *Node) expire(now time.Time) {
	limit := now.Add(-missedBeats * n.cfg.Heartbeat)
	p := &n.peers
	p.mu.Lock()
	for id, pr := range p.nodes {
		if pr.seen.Before(limit) {
			delete(p.nodes, id)
			n.log.Warn("node gone: no heartbeat", "peer", pr.name, "peerId", id)
		}
	}
	p.mu.Unlock()
}

// Nodes lists the live nodes of the cluster, this one included, sorted by
// name then id. A node is live from its first heartbeat until it leaves
// (Close) or misses three heartbeats in a row.
func (n *Node) Nodes() []NodeInfo {
	out := []NodeInfo{{ID: n.id, Name: n.cfg.Name, Started: n.born, Self: true}}
	limit := time.Now().Add(-missedBeats * n.cfg.Heartbeat)
	p := &n.peers
	p.mu.Lock()
	for id, pr := range p.nodes {
		if !pr.seen.Before(limit) {
			out = append(out, NodeInfo{ID: id, Name: pr.name, Started: pr.started})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b NodeInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// others returns the other live nodes: id -> name.
func (n *Node) others() map[string]string {
	limit := time.Now().Add(-missedBeats * n.cfg.Heartbeat)
	p := &n.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.nodes))
	for id, pr := range p.nodes {
		if !pr.seen.Before(limit) {
			out[id] = pr.name
		}
	}
	return out
}

// nameOf returns the name of node id, or id itself if unknown.
func (n *Node) nameOf(id string) string {
	p := &n.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.nodes[id]; pr != nil && pr.name != "" {
		return pr.name
	}
	return id
}
