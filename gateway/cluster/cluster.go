package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/nats-io/nats.go"
)

// IDLen is the length of a node id, which starts every session id the
// node makes.
const IDLen = 8

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newNodeID returns a random node id: IDLen characters of [a-z2-7]. A node
// gets a new one each time it starts, so that the clientIds of its
// previous life are known to be gone.
func newNodeID() string {
	b := make([]byte, IDLen*5/8)
	rand.Read(b)
	return idEncoding.EncodeToString(b)
}

// OwnerOf returns the id of the node that owns session id clientID, or ""
// if clientID was not made by a clustered node.
func OwnerOf(clientID string) string {
	if len(clientID) <= IDLen {
		return ""
	}
	return clientID[:IDLen]
}

// Config configures a Node. Zero values mean the defaults of the fields of
// config.ClusterConfig of the same names.
type Config struct {
	// Name is the node's name, for people: logs, metrics, the API.
	Name string
	// Prefix starts every subject. Default "cometgate".
	Prefix string
	// URLs are the NATS servers.
	URLs []string
	// Options are added to the connection's (credentials, TLS).
	Options []nats.Option
	// RequestTimeout bounds requests to other nodes that do not hold a
	// connect. Default 2s.
	RequestTimeout time.Duration
	// MaxPendingMessages and MaxPendingBytes are each subscription's
	// pending limits. Defaults 65536 and 64 MiB.
	MaxPendingMessages int
	MaxPendingBytes    int
	// MaxRelayed bounds the relayed polls served at once. Default 20000.
	MaxRelayed int
	// ReconnectWait is the pause between reconnection attempts. Default 1s.
	ReconnectWait time.Duration
	// ReconnectBufferBytes is what is kept to send while reconnecting.
	// Default 8 MiB.
	ReconnectBufferBytes int
	// Heartbeat is the interval of the node's presence heartbeat; a node
	// that misses three is gone. Default 1s.
	Heartbeat time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "cometgate"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.MaxPendingMessages <= 0 {
		c.MaxPendingMessages = 65536
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 64 << 20
	}
	if c.MaxRelayed <= 0 {
		c.MaxRelayed = 20000
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = time.Second
	}
	if c.ReconnectBufferBytes <= 0 {
		c.ReconnectBufferBytes = 8 << 20
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats are a Node's counters, read with atomic loads.
type Stats struct {
	// Published counts broadcasts sent to the other nodes; PublishFailed,
	// those NATS would not take (disconnected with a full reconnect
	// buffer, a subject too long): their local fan-out happened.
	Published     atomic.Int64
	PublishFailed atomic.Int64
	// Received counts broadcasts received; Invalid, those dropped because
	// they were not well formed (or not valid JSON in UTF-8).
	Received atomic.Int64
	Invalid  atomic.Int64
	// PeerInvalid counts the malformed heartbeats, control API requests
	// and replies of other nodes, dropped.
	PeerInvalid atomic.Int64
	// Subscriptions is the number of broadcast subscriptions held now.
	Subscriptions atomic.Int64
	// Disconnects and Reconnects count the connection's losses and
	// recoveries.
	Disconnects atomic.Int64
	Reconnects  atomic.Int64
}

// Node is one gateway's membership of the cluster. Create it with Connect,
// pass it to the engine with engine.WithBroker and engine.WithIDPrefix(ID),
// then Bind the engine; Close leaves the cluster.
type Node struct {
	cfg  Config
	id   string
	log  *slog.Logger
	nc   *nats.Conn
	e    *engine.Engine // set by Bind
	done chan struct{}
	wg   sync.WaitGroup

	stats Stats

	// broadcast subscriptions (broker.go)
	bmu       sync.Mutex
	ops       []interestOp  // changes not applied yet
	requested uint64        // changes told so far
	applied   uint64        // changes applied
	appliedCh chan struct{} // closed and replaced when applied advances
	subs      map[string]*nats.Subscription
	kick      chan struct{}
	// drops counted by subscriptions since unsubscribed
	droppedGone atomic.Int64

	relay relayState // relayed polls (relay.go)

	closeOnce sync.Once
	started   atomic.Bool

	// cluster-wide control API and presence (api.go, presence.go)
	born       time.Time
	peers      presence
	apiHandler atomic.Pointer[APIHandler]
	apiSem     chan struct{} // bounds the API requests served at once
}

// New returns a node with a fresh id, not connected yet: pass it to the
// engine (engine.WithBroker, engine.WithIDPrefix(ID)), Bind the engine,
// then Start it.
func New(cfg Config) *Node {
	cfg.setDefaults()
	return &Node{
		cfg:       cfg,
		id:        newNodeID(),
		log:       cfg.Logger.With("node", cfg.Name),
		done:      make(chan struct{}),
		appliedCh: make(chan struct{}),
		subs:      make(map[string]*nats.Subscription),
		kick:      make(chan struct{}, 1),
		born:      time.Now(),
		peers:     presence{nodes: make(map[string]*peer)},
	}
}

// Start connects to NATS and starts serving the other nodes. If no server
// can be reached it keeps trying in the background (the node serves its
// local clients meanwhile); it fails only on a configuration error, or
// when ctx ends first.
func (n *Node) Start(ctx context.Context) error {
	cfg := n.cfg
	opts := []nats.Option{
		nats.Name("cometgate " + cfg.Name + " " + n.id),
		nats.NoEcho(), // a node fans out its own broadcasts itself
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/2, cfg.ReconnectWait),
		nats.ReconnectBufSize(cfg.ReconnectBufferBytes),
		nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(n.asyncError),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case <-n.done:
				return // leaving the cluster: the drain closes the connection
			default:
			}
			n.stats.Disconnects.Add(1)
			n.log.Warn("disconnected from NATS; serving local clients, reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.stats.Reconnects.Add(1)
			n.log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted())
		}),
	}
	opts = append(opts, cfg.Options...)
	urls := strings.Join(cfg.URLs, ",")
	nc, err := nats.Connect(urls, opts...)
	if err != nil && !errors.Is(err, nats.ErrNoServers) {
		return fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return err
	}
	n.nc = nc
	if !nc.IsConnected() {
		n.log.Warn("NATS not reachable yet; serving local clients, retrying", "servers", urls)
	}
	if err := n.serve(); err != nil {
		nc.Close()
		return err
	}
	n.wg.Add(1)
	go n.reconcile()
	n.kickReconcile() // interest told before Start
	n.started.Store(true)
	return nil
}

// serve subscribes to the subjects on which other nodes ask this one:
// relayed polls (relay.go) and the cluster-wide control API and
// narrowcasts (api.go).
func (n *Node) serve() error {
	if err := n.serveRelay(); err != nil {
		return err
	}
	return n.serveAPI()
}

// SetURLs replaces the NATS servers to connect to; call it before Start.
func (n *Node) SetURLs(urls []string) { n.cfg.URLs = urls }

// ID returns the node's id, which starts the session ids it makes.
func (n *Node) ID() string { return n.id }

// Name returns the node's configured name.
func (n *Node) Name() string { return n.cfg.Name }

// Stats returns the node's counters.
func (n *Node) Stats() *Stats { return &n.stats }

// Connected reports whether the node is connected to NATS now.
func (n *Node) Connected() bool { return n.started.Load() && n.nc.IsConnected() }

// Conn returns the node's NATS connection.
func (n *Node) Conn() *nats.Conn { return n.nc }

// subject returns P.<parts joined by dots>.
func (n *Node) subject(parts ...string) string {
	s := n.cfg.Prefix
	for _, p := range parts {
		s += "." + p
	}
	return s
}

// Bind attaches the engine whose Broker the node is and starts serving the
// other nodes' requests for it. Call it once, before the engine serves
// clients.
func (n *Node) Bind(e *engine.Engine) error {
	n.e = e
	return nil
}

// Close leaves the cluster: the node stops answering the other nodes
// (which then tell its clients to handshake again elsewhere), drains what
// it has received, and closes the connection, within ctx.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		n.leave()
		close(n.done)
		n.wg.Wait()
		if !n.started.Load() {
			return
		}
		err = n.stopRelay(ctx)
		drained := make(chan struct{})
		n.nc.SetClosedHandler(func(*nats.Conn) { close(drained) })
		if n.nc.IsClosed() {
			return
		}
		if derr := n.nc.Drain(); derr != nil {
			n.nc.Close()
			return
		}
		select {
		case <-drained:
		case <-ctx.Done():
			n.nc.Close()
			err = ctx.Err()
		}
	})
	return err
}

// asyncError counts what the NATS client reports asynchronously: above
// all slow-consumer drops, which it otherwise makes silently.
func (n *Node) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
		dropped, _ := sub.Dropped()
		n.log.Warn("NATS subscription cannot keep up: messages dropped", "subject", sub.Subject, "dropped", dropped)
		return
	}
	n.log.Warn("NATS error", "err", err)
}
