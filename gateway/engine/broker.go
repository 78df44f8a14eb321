package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
)

// Broker carries broadcasts between the nodes of a cluster (see package
// gateway/cluster). Without one the engine is a single node.
//
// The engine tells the broker which channels and patterns its sessions
// subscribe to (Interest), hands it every broadcast that entered on this
// node (Publish), and the broker hands broadcasts from other nodes back
// through Engine.Receive, naming the subscription they arrived through.
type Broker interface {
	// Interest is called when channel name (a channel or a pattern such
	// as /a/* or /a/**) gains its first local subscriber (on) or loses
	// its last. It is called with the engine's channel lock held, in the
	// order the changes happen, so it must only record the change: it
	// must never wait on the network.
	Interest(name string, on bool)
	// Sync waits until the interest changes told so far are in effect in
	// the cluster, or ctx ends. A subscribe that gave a channel its first
	// local subscriber calls it before replying, so that a client which
	// has its subscribe reply receives what any node publishes next.
	Sync(ctx context.Context) error
	// Publish sends a broadcast that entered the engine on this node,
	// after its inbound path (policies, filters, publish handlers), to the
	// other nodes. It must not wait on the network for long; a failure is
	// counted and logged by the broker, and the local fan-out happens
	// anyway.
	Publish(channel string, data, ext json.RawMessage) error
}

// WithBroker makes the engine one node of a cluster joined by b.
func WithBroker(b Broker) Option { return optionFunc(func(e *Engine) { e.broker = b }) }

// WithIDPrefix starts every session id the engine makes with prefix (the
// node's id in a cluster, so that any node can tell a clientId's owner).
// It must be made of [a-z0-9].
func WithIDPrefix(prefix string) Option {
	return optionFunc(func(e *Engine) { e.idPrefix = prefix })
}

// Receive fans out a broadcast that another node published (Broker.Publish)
// and that reached this node through its subscription to via, a channel or
// pattern for which the engine declared Interest. Since a node subscribes
// once per channel or pattern its sessions use, a message matching several
// of them arrives once through each: each local session gets it only
// through the first of its matching subscriptions, in the engine's fixed
// order (/** patterns from the root down, then /*, then the channel), so
// exactly once. The inbound path's checks, filters and handlers ran on the
// publishing node; here the message passes the channel's outbound filters
// and this node's Senders. data and ext (nil: none) must be JSON; they are
// checked (bayeux.ValidJSON), since what comes from the network is not
// trusted to reach a client unchecked.
func (e *Engine) Receive(via, name string, data, ext json.RawMessage) (int, error) {
	if n, wild, ok := bayeux.ParseChannel(name); !ok || wild != bayeux.NotWild || n != name || bayeux.KindOf(name) != bayeux.KindBroadcast {
		return 0, fmt.Errorf("%w: %q", ErrInvalidChannel, name)
	}
	if err := bayeux.ValidJSON(data); err != nil {
		return 0, fmt.Errorf("engine: data from the broker: %w", err)
	}
	if len(ext) > 0 {
		if err := bayeux.ValidJSON(ext); err != nil {
			return 0, fmt.Errorf("engine: ext from the broker: %w", err)
		}
	}
	var route *plugins.Route
	if p := e.plugins.Load(); p != nil {
		route = p.Route(name)
	}
	return e.broadcast(nil, name, data, ext, route, via, false)
}

type localKey struct{}

// PublishLocal is Publish for this node's subscribers only: the message is
// not handed to the broker. Backend streams use it, since each node opens
// its own stream for the channels its sessions subscribe to: every
// subscriber gets each stream message once, from its own node's stream.
func (e *Engine) PublishLocal(channel string, data, ext json.RawMessage) (int, error) {
	ctx := context.WithValue(context.Background(), localKey{}, true)
	return e.Inject(ctx, plugins.FromBackend, &bayeux.Message{Channel: channel, Data: data, Ext: ext})
}

// forwards reports whether a broadcast from src, entering through ctx,
// goes to the other nodes.
func (e *Engine) forwards(ctx context.Context, src plugins.Source) bool {
	if e.broker == nil || src == plugins.FromBroker {
		return false
	}
	local, _ := ctx.Value(localKey{}).(bool)
	return !local
}
