package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// grpcShared is the one connection every client of a direct-gRPC run
// multiplexes its calls on, as a service calling another would.
type grpcShared struct {
	conn *grpc.ClientConn
	ids  atomic.Uint64
}

// newGRPCShared connects to a backend that implements the Cometgate
// backend contract; url is grpc://HOST:PORT.
func newGRPCShared(url string) (*grpcShared, error) {
	addr, ok := strings.CutPrefix(url, "grpc://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("-url %q: want grpc://HOST:PORT with -transport grpc", url)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &grpcShared{conn: conn}, nil
}

// grpcClient makes the rpc scenario's calls straight to the backend's
// Call, with no gateway in between: the baseline the gateway's overhead
// is measured against.
type grpcClient struct {
	backend backendv1.BackendClient
	shared  *grpcShared
}

func newGRPCClient(e *env) *grpcClient {
	return &grpcClient{backend: backendv1.NewBackendClient(e.grpc.conn), shared: e.grpc}
}

var errNotBayeux = errors.New("not available over -transport grpc (rpc scenario only)")

// Open makes sure the shared connection is up.
func (c *grpcClient) Open(ctx context.Context) error {
	c.shared.conn.Connect()
	return nil
}

func (c *grpcClient) Subscribe(context.Context, string) error { return errNotBayeux }

func (c *grpcClient) Publish(context.Context, string, [][]byte) error { return errNotBayeux }

// Call sends data to the backend as a remote call on channel would.
func (c *grpcClient) Call(ctx context.Context, channel string, data []byte) error {
	id := strconv.FormatUint(c.shared.ids.Add(1), 10)
	_, err := c.backend.Call(ctx, &backendv1.CallRequest{Channel: channel, Data: data, MessageId: id})
	return err
}

// Close does nothing: the shared connection outlives the clients.
func (c *grpcClient) Close(context.Context) {}
