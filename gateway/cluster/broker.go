package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/nats-io/nats.go"
)

// interestOp is one change of local interest in a channel or pattern.
type interestOp struct {
	name string
	on   bool
}

// Interest records that name gained its first local subscriber or lost
// its last (engine.Broker). It runs under the engine's channel lock, so it
// only queues the change for the reconciling goroutine.
func (n *Node) Interest(name string, on bool) {
	if bayeux.KindOf(name) != bayeux.KindBroadcast {
		return // /meta/ and /service/ never travel as broadcasts
	}
	n.bmu.Lock()
	n.ops = append(n.ops, interestOp{name, on})
	n.requested++
	n.bmu.Unlock()
	n.kickReconcile()
}

func (n *Node) kickReconcile() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Sync waits until the interest changes told so far are applied and the
// NATS server has them (a flush round trip), or ctx or the node's request
// timeout ends (engine.Broker).
func (n *Node) Sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	n.bmu.Lock()
	target := n.requested
	for n.applied < target {
		ch := n.appliedCh
		n.bmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: subscription not applied: %w", ctx.Err())
		case <-n.done:
			return errClosed
		}
		n.bmu.Lock()
	}
	n.bmu.Unlock()
	if !n.started.Load() || !n.nc.IsConnected() {
		return nats.ErrConnectionReconnecting // applied when the connection is back
	}
	return n.nc.FlushWithContext(ctx)
}

var (
	errClosed     = errors.New("cluster: node closed")
	errNotStarted = errors.New("cluster: node not started")
)

// reconcile applies interest changes in order, outside the engine's
// locks: one NATS subscription per channel or pattern with local
// subscribers.
func (n *Node) reconcile() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.kick:
		}
		n.bmu.Lock()
		ops := n.ops
		n.ops = nil
		n.bmu.Unlock()
		for _, op := range ops {
			n.apply(op)
		}
		n.bmu.Lock()
		n.applied += uint64(len(ops))
		close(n.appliedCh)
		n.appliedCh = make(chan struct{})
		n.bmu.Unlock()
	}
}

// apply subscribes to or unsubscribes from one broadcast subject. Only
// reconcile calls it, so subs needs no lock of its own beyond bmu for
// readers.
func (n *Node) apply(op interestOp) {
	n.bmu.Lock()
	sub := n.subs[op.name]
	n.bmu.Unlock()
	switch {
	case op.on && sub == nil:
		via := op.name
		s, err := n.nc.Subscribe(SubjectOf(n.cfg.Prefix, op.name), func(m *nats.Msg) { n.receive(via, m.Data) })
		if err != nil {
			n.log.Error("cannot subscribe to a channel's subject; its messages from other nodes are lost", "channel", op.name, "err", err)
			return
		}
		if err := s.SetPendingLimits(n.cfg.MaxPendingMessages, n.cfg.MaxPendingBytes); err != nil {
			n.log.Warn("cannot set pending limits", "channel", op.name, "err", err)
		}
		n.bmu.Lock()
		n.subs[op.name] = s
		n.bmu.Unlock()
		n.stats.Subscriptions.Add(1)
	case !op.on && sub != nil:
		dropped, _ := sub.Dropped()
		n.droppedGone.Add(int64(dropped))
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.log.Warn("cannot unsubscribe from a channel's subject", "channel", op.name, "err", err)
		}
		n.bmu.Lock()
		delete(n.subs, op.name)
		n.bmu.Unlock()
		n.stats.Subscriptions.Add(-1)
	}
}

// SlowConsumerDrops returns how many broadcasts the NATS client dropped
// because a subscription's pending limits were full.
func (n *Node) SlowConsumerDrops() int64 {
	total := n.droppedGone.Load()
	n.bmu.Lock()
	for _, s := range n.subs {
		if d, err := s.Dropped(); err == nil {
			total += int64(d)
		}
	}
	n.bmu.Unlock()
	return total
}

// Frame of a broadcast on NATS: a version byte, the channel and the ext
// (each as a uvarint length and bytes; an empty ext is none), then the
// data to the end.
const frameVersion = 1

// appendFrame encodes a broadcast.
func appendFrame(dst []byte, channel string, data, ext []byte) []byte {
	dst = append(dst, frameVersion)
	dst = binary.AppendUvarint(dst, uint64(len(channel)))
	dst = append(dst, channel...)
	dst = binary.AppendUvarint(dst, uint64(len(ext)))
	dst = append(dst, ext...)
	return append(dst, data...)
}

var errFrame = errors.New("cluster: malformed broadcast frame")

// parseFrame decodes a broadcast frame; the slices alias b.
func parseFrame(b []byte) (channel string, data, ext []byte, err error) {
	if len(b) < 1 || b[0] != frameVersion {
		return "", nil, nil, errFrame
	}
	b = b[1:]
	l, k := binary.Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return "", nil, nil, errFrame
	}
	channel = string(b[k : k+int(l)])
	b = b[k+int(l):]
	l, k = binary.Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return "", nil, nil, errFrame
	}
	if l > 0 {
		ext = b[k : k+int(l)]
	}
	data = b[k+int(l):]
	return channel, data, ext, nil
}

// Publish sends a broadcast that entered on this node to the others
// (engine.Broker). While the connection is being re-established, NATS
// keeps it in the reconnect buffer; when that is full, it fails.
func (n *Node) Publish(channel string, data, ext json.RawMessage) error {
	if !n.started.Load() {
		n.stats.PublishFailed.Add(1)
		return errNotStarted
	}
	b := appendFrame(make([]byte, 0, 8+len(channel)+len(data)+len(ext)), channel, data, ext)
	if err := n.nc.Publish(SubjectOf(n.cfg.Prefix, channel), b); err != nil {
		n.stats.PublishFailed.Add(1)
		return fmt.Errorf("cluster: publishing to NATS: %w", err)
	}
	n.stats.Published.Add(1)
	return nil
}

// receive hands a broadcast from another node, which arrived through the
// subscription for via, to the engine.
func (n *Node) receive(via string, b []byte) {
	e := n.e
	if e == nil {
		return
	}
	channel, data, ext, err := parseFrame(b)
	if err == nil {
		_, err = e.Receive(via, channel, data, ext)
		if errors.Is(err, engine.ErrClosing) {
			return
		}
	}
	if err != nil {
		n.stats.Invalid.Add(1)
		n.log.Warn("broadcast from another node dropped", "via", via, "err", err)
		return
	}
	n.stats.Received.Add(1)
}
