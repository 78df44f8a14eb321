package cluster_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cometgate/cometgate/gateway/cluster"
	gt "github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/cometgate/cometgate/gateway/transport"
)

// echoPolls answers every relayed request with a fixed reply.
type echoPolls struct{}

func (echoPolls) ServeRelayed(_ context.Context, req *transport.RelayRequest, dst []byte) *transport.RelayResponse {
	dst = append(dst, `[{"channel":"/bench","id":"1","successful":true}]`...)
	return &transport.RelayResponse{Status: 200, Body: dst}
}

// BenchmarkRelayForward measures one relayed request's round trip over an
// in-process NATS server (no HTTP, no engine): what the relay itself adds.
func BenchmarkRelayForward(b *testing.B) {
	nats := gt.StartNATS(b)
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	owner := cluster.New(cluster.Config{Name: "owner", URLs: []string{nats.URL}, Logger: quiet})
	owner.ServePolls(echoPolls{})
	relay := cluster.New(cluster.Config{Name: "relay", URLs: []string{nats.URL}, Logger: quiet})
	for _, n := range []*cluster.Node{owner, relay} {
		if err := n.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(ctx) })
	}
	req := &transport.RelayRequest{
		ClientID:   owner.ID() + "abcdefghij",
		Transport:  transport.LongPolling,
		Messages:   []byte(`[{"channel":"/bench","id":"1","clientId":"x","data":1}]`),
		Browser:    "0123456789",
		RemoteAddr: "127.0.0.1:4242",
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := relay.Forward(ctx, req)
		if err != nil || resp.Status != 200 {
			b.Fatalf("Forward: %v %v", resp, err)
		}
	}
}
