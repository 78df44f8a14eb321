package gatewaytest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an in-process nats-server on a loopback port, for cluster tests.
type NATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
	// URL is the client URL, the same after Restart.
	URL string
}

// StartNATS starts a NATS server on a free loopback port; it is shut down
// when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}}
	n.start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	n.URL = n.srv.ClientURL()
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) start() {
	n.t.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("gatewaytest: nats-server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		n.t.Fatalf("gatewaytest: nats-server did not start")
	}
	n.srv = srv
}

// Server returns the running server.
func (n *NATS) Server() *server.Server { return n.srv }

// Stop shuts the server down (idempotent).
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Restart stops the server and starts a new one on the same port.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Stop()
	n.start()
}

// NewCluster starts nodes gateways joined through nats (broker nats),
// named node0, node1, …; configure, if not nil, is applied to each
// node's configuration after the cluster settings, with the node's index.
func NewCluster(t testing.TB, nats *NATS, nodes int, configure func(i int, c *config.Config), opts ...gateway.Option) []*Server {
	t.Helper()
	out := make([]*Server, nodes)
	for i := range out {
		out[i] = NewServer(t, func(c *config.Config) {
			c.Cluster.Broker = "nats"
			c.Cluster.NodeName = fmt.Sprintf("node%d", i)
			c.Cluster.NATS.URLs = []string{nats.URL}
			c.Cluster.NATS.ReconnectWait = config.Duration(50 * time.Millisecond)
			if configure != nil {
				configure(i, c)
			}
		}, opts...)
	}
	for i, s := range out {
		if nd := s.Node(); nd == nil || !nd.Connected() {
			t.Fatalf("gatewaytest: node%d is not connected to NATS", i)
		}
	}
	return out
}
