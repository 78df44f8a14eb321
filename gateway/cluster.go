package gateway

import (
	"context"
	"fmt"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/cluster"
	"github.com/cometgate/cometgate/gateway/metrics"
	"github.com/nats-io/nats.go"
)

// clusterNode builds the node of cfg's cluster section, not started, or
// nil for broker memory.
func clusterNode(cfg *config.Config, s *Server) (*cluster.Node, error) {
	if !cfg.Clustered() {
		return nil, nil
	}
	k := cfg.Cluster
	var opts []nats.Option
	n := k.NATS
	switch {
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats.nkeyFile: %w", err)
		}
		opts = append(opts, o)
	}
	if n.Token != "" {
		opts = append(opts, nats.Token(n.Token))
	}
	if n.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.CAFile))
	}
	if n.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.CertFile, n.KeyFile))
	}
	return cluster.New(cluster.Config{
		Name:                 k.NodeNameOrHost(),
		Prefix:               k.SubjectPrefix,
		URLs:                 n.URLs,
		Options:              opts,
		RequestTimeout:       k.RequestTimeout.D(),
		MaxPendingMessages:   k.MaxPendingMessages,
		MaxPendingBytes:      k.MaxPendingBytes,
		MaxRelayed:           k.MaxRelayed,
		ReconnectWait:        n.ReconnectWait.D(),
		ReconnectBufferBytes: n.ReconnectBufferBytes,
		Logger:               s.log,
	}), nil
}

// bindRelay relays the polls of sessions owned by other nodes to them, and
// serves theirs for this node's sessions (no sticky sessions).
func (s *Server) bindRelay() {
	if s.node == nil {
		return
	}
	s.transport.SetRelay(s.node)
	s.node.ServePolls(s.transport)
}

// startCluster starts the embedded NATS server (broker embedded) and
// connects the node; undo is what to call if a later step of Start fails.
func (s *Server) startCluster(ctx context.Context) (undo func(), err error) {
	if s.node == nil {
		return func() {}, nil
	}
	k := s.cfg.Cluster
	if k.Broker == "embedded" {
		emb, err := cluster.StartEmbedded(cluster.EmbeddedConfig{
			Listen:        k.Embedded.Listen,
			ClusterListen: k.Embedded.ClusterListen,
			Routes:        k.Embedded.Routes,
			ClusterName:   k.Embedded.ClusterName,
			ServerName:    k.NodeNameOrHost(),
			Logger:        s.log,
		})
		if err != nil {
			return nil, err
		}
		s.embedded = emb
		s.node.SetURLs([]string{emb.ClientURL()})
	}
	if err := s.node.Start(ctx); err != nil {
		s.stopEmbedded()
		return nil, err
	}
	s.log.Info("cluster node started", "broker", k.Broker, "node", s.node.Name(), "id", s.node.ID(), "connected", s.node.Connected())
	return func() {
		s.node.Close(context.WithoutCancel(ctx))
		s.stopEmbedded()
	}, nil
}

func (s *Server) stopEmbedded() {
	if s.embedded != nil {
		s.embedded.Shutdown()
		s.embedded = nil
	}
}

// Node returns the server's cluster node, or nil on a single node.
func (s *Server) Node() *cluster.Node { return s.node }

// clusterFigures reads the node's counters for /metrics.
func (s *Server) clusterFigures() metrics.ClusterFigures {
	n := s.node
	st, rs := n.Stats(), n.RelayStats()
	return metrics.ClusterFigures{
		Connected:         n.Connected(),
		Sent:              st.Published.Load(),
		Received:          st.Received.Load(),
		SendFailed:        st.PublishFailed.Load(),
		Invalid:           st.Invalid.Load(),
		PeerInvalid:       st.PeerInvalid.Load(),
		SlowConsumerDrops: n.SlowConsumerDrops(),
		Subscriptions:     st.Subscriptions.Load(),
		Disconnects:       st.Disconnects.Load(),
		Reconnects:        st.Reconnects.Load(),
		RelayedOut:        rs.Out.Load(),
		RelayedIn:         rs.In.Load(),
		RelayFailed: map[string]int64{
			"gone":        rs.NoResponders.Load(),
			"timeout":     rs.Timeouts.Load(),
			"unreachable": rs.Unreachable.Load(),
			"refused":     rs.Refused.Load(),
			"invalid":     rs.Invalid.Load(),
		},
		Nodes: int64(len(n.Nodes())),
	}
}
