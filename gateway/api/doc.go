// Package api serves the gateway's control API, cometgate.gateway.v1.Gateway,
// over gRPC and as REST/JSON through grpc-gateway (called in process, with
// no network hop), plus its OpenAPI document at /v1/openapi.json.
//
// Every request must carry a configured bearer token
// ("Authorization: Bearer <token>") or come over mTLS with a verified
// client certificate; otherwise gRPC answers Unauthenticated and REST 401.
// With no token and no client CA configured, authentication is off; the
// root package allows that only on a loopback address.
package api
