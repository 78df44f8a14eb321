package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type echoBackend struct {
	backendv1.UnimplementedBackendServer
	got chan *backendv1.CallRequest
}

func (b echoBackend) Call(_ context.Context, r *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	b.got <- r
	if r.GetChannel() != "/service/echo" {
		return nil, status.Error(codes.NotFound, "no such method")
	}
	return &backendv1.CallResponse{Data: r.GetData()}, nil
}

func TestGRPCClientCallsTheBackendDirectly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	be := echoBackend{got: make(chan *backendv1.CallRequest, 2)}
	backendv1.RegisterBackendServer(srv, be)
	go srv.Serve(ln)
	defer srv.Stop()

	g, err := newGRPCShared("grpc://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer g.conn.Close()
	c := newGRPCClient(&env{grpc: g})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "/service/echo", []byte(`{"x":1}`)); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if r := <-be.got; string(r.GetData()) != `{"x":1}` || r.GetMessageId() != "1" {
		t.Errorf("backend got %v", r)
	}
	if err := c.Call(ctx, "/service/other", []byte(`{}`)); status.Code(err) != codes.NotFound {
		t.Errorf("Call to a missing method = %v; want NotFound", err)
	}
	if err := c.Subscribe(ctx, "/x"); err == nil {
		t.Error("Subscribe over grpc succeeded")
	}
}

func TestParseFlagsGRPCTransport(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-scenario", "rpc", "-transport", "grpc", "-url", "grpc://127.0.0.1:9090"}, ""},
		{[]string{"-scenario", "fanout", "-transport", "grpc", "-url", "grpc://127.0.0.1:9090"}, "only the rpc scenario"},
		{[]string{"-scenario", "rpc", "-transport", "grpc", "-url", "http://127.0.0.1:9090"}, "want grpc://"},
		{[]string{"-scenario", "rpc", "-url", "grpc://127.0.0.1:9090"}, "want http://"},
	} {
		_, err := parseFlags(tc.args)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseFlags(%q) = %v; want error containing %q", tc.args, err, tc.err)
		}
	}
}
