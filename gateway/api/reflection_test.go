package api_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/cometgate/cometgate/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const gatewayService = "cometgate.gateway.v1.Gateway"

// reflectOnce sends one reflection request on a fresh stream and returns the
// answer.
func reflectOnce(ctx context.Context, cc *grpc.ClientConn, req *reflectionv1.ServerReflectionRequest) (*reflectionv1.ServerReflectionResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := reflectionv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return stream.Recv()
}

// TestReflection checks that the API's gRPC server answers server
// reflection (v1) on its own listener and on the public one, behind the
// API's authentication, well enough to call a method knowing only its
// name, as grpcurl does.
func TestReflection(t *testing.T) {
	for _, listen := range []string{"own", "public"} {
		t.Run(listen, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startGateway(t, func(c *config.Config) {
				c.API.Tokens = []string{testToken}
				if listen == "public" {
					c.API.Listen = "public"
				}
			})
			addr := srv.Addr().String()
			if listen == "own" {
				addr = apiAddr(t, srv)
			}
			dial := func(opts ...grpc.DialOption) *grpc.ClientConn {
				cc, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
				if err != nil {
					t.Fatalf("grpc.NewClient: %v", err)
				}
				t.Cleanup(func() { cc.Close() })
				return cc
			}
			list := &reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}

			// Without a token, reflection is refused like the API.
			_, err := reflectOnce(ctx, dial(), list)
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("reflection without a token: %v, want Unauthenticated", err)
			}

			cc := dial(grpc.WithPerRPCCredentials(tokenCreds(testToken)))
			resp, err := reflectOnce(ctx, cc, list)
			if err != nil {
				t.Fatalf("ListServices: %v", err)
			}
			var names []string
			for _, s := range resp.GetListServicesResponse().GetService() {
				names = append(names, s.GetName())
			}
			if !slices.Contains(names, gatewayService) {
				t.Fatalf("ListServices = %v, want %s among them", names, gatewayService)
			}

			// The service's file and its imports resolve into descriptors.
			resp, err = reflectOnce(ctx, cc, &reflectionv1.ServerReflectionRequest{
				MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: gatewayService},
			})
			if err != nil {
				t.Fatalf("FileContainingSymbol: %v", err)
			}
			if e := resp.GetErrorResponse(); e != nil {
				t.Fatalf("FileContainingSymbol: error %d %s", e.GetErrorCode(), e.GetErrorMessage())
			}
			set := &descriptorpb.FileDescriptorSet{}
			for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
				fd := &descriptorpb.FileDescriptorProto{}
				if err := proto.Unmarshal(b, fd); err != nil {
					t.Fatalf("file descriptor: %v", err)
				}
				set.File = append(set.File, fd)
			}
			files, err := protodesc.NewFiles(set)
			if err != nil {
				t.Fatalf("the reflected files do not resolve: %v", err)
			}
			d, err := files.FindDescriptorByName(gatewayService)
			if err != nil {
				t.Fatalf("%s not in the reflected files: %v", gatewayService, err)
			}
			sd := d.(protoreflect.ServiceDescriptor)
			if got := sd.ParentFile().Path(); got != "cometgate/gateway/v1/gateway.proto" {
				t.Errorf("service file %q", got)
			}

			// Call Stats with dynamic messages built from those descriptors.
			md := sd.Methods().ByName("Stats")
			if md == nil {
				t.Fatalf("no Stats method in %s", sd.FullName())
			}
			newLP(t, ctx, srv)
			in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
			if err := cc.Invoke(ctx, "/"+gatewayService+"/Stats", in, out); err != nil {
				t.Fatalf("Stats with reflected descriptors: %v", err)
			}
			if n := out.Get(md.Output().Fields().ByName("sessions")).Int(); n != 1 {
				t.Errorf("Stats sessions = %d, want 1", n)
			}
		})
	}
}
