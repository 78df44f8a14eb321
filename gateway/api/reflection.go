package api

import (
	"context"
	"crypto/tls"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// ReflectionPaths are the URL path prefixes of the gRPC server reflection
// services (v1 and v1alpha) that Handler serves besides the Gateway
// service, for a mux that routes by path.
var ReflectionPaths = []string{
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// registerReflection adds the gRPC server reflection services to gs, so
// that tools such as grpcurl list and call the API without its .proto.
// They describe only what gs serves, and streamAuth makes them ask for
// the same authentication as the API.
func registerReflection(gs *grpc.Server) {
	reflection.Register(gs)
}

// callAuthorized checks the bearer token in a call's metadata, or its TLS
// client certificate.
func (s *Service) callAuthorized(ctx context.Context) bool {
	var authz string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			authz = v[0]
		}
	}
	var cs *tls.ConnectionState
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			cs = &ti.State
		}
	}
	return s.authorized(authz, cs)
}

// streamAuth authenticates streaming calls as unaryAuth does unary ones.
// The Gateway methods are unary; server reflection streams.
func (s *Service) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !s.callAuthorized(ss.Context()) {
		s.cfg.Logger.Debug("control API call refused: not authenticated", "method", info.FullMethod)
		return status.Error(codes.Unauthenticated, "authentication required")
	}
	return handler(srv, ss)
}
