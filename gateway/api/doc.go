// Package api serves the gateway's control API, cometgate.gateway.v1.Gateway,
// over gRPC and as REST/JSON through grpc-gateway (called in process, with
// no network hop), plus its OpenAPI document at /v1/openapi.json. The gRPC
// server also answers server reflection, behind the same authentication.
//
// REST request bodies keep their message data exact: the "data" member is
// passed on as the JSON text sent (see exactDataJSON), not through
// google.protobuf.Value, whose numbers are doubles.
//
// Every request must carry a configured bearer token
// ("Authorization: Bearer <token>") or come over mTLS with a verified
// client certificate; otherwise gRPC answers Unauthenticated and REST 401.
// With no token and no client CA configured, authentication is off; the
// root package allows that only on a loopback address.
//
// Before authentication, REST requests pass checks that keep web pages
// out, since a page can make a browser on the gateway's host call a
// loopback address (see Service.RESTHandler): the Host header must name an
// IP address, "localhost", the listen host or one of Config.AllowedHosts
// (against DNS rebinding); a request with an Origin header must come from
// one of Config.AllowedOrigins, whose CORS preflights are answered; and
// POST, PUT, PATCH and DELETE must be application/json. Refusals are
// answered with a status JSON, logged at debug and counted
// (Service.Refused). gRPC requests skip these checks: a browser cannot
// send one without a preflight, which the checks refuse.
//
// On a clustered node (Config.Cluster), ListSessions, ListChannels and
// Stats answer for every node: this node answers for itself and asks the
// others at once (scatter-gather over NATS), merging their pages
// (sessions carry their node's name, channel counts are summed, Stats
// sums the counters and lists each node's). GetSession, and Deliver and
// Disconnect of a client id, go to the node owning the session (NOT_FOUND
// when it is gone, UNAVAILABLE when it does not answer); Deliver and
// Disconnect of a user id go to every node. A node known live that does
// not answer within cluster.requestTimeout is named in the response's
// unreachable_nodes, never silently left out. Requests from other nodes
// are checked as requests from API clients are.
package api
