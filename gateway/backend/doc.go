// Package backend binds Bayeux channels to backend services:
//
//   - call routes turn a client's publish on a /service/ channel into a
//     gRPC call (the Cometgate contract's Call, or any unary method read
//     from server reflection or a descriptor set) or an HTTP POST, and
//     deliver the answer to that client alone, on the same channel with the
//     same message id (CometD's remote call);
//   - stream routes feed broadcast channels from server-streaming methods,
//     opened on a node's first subscriber and cancelled after its last,
//     reopened with backoff and jitter when they break;
//   - publish routes let a backend accept, rewrite or reject a client's
//     publish before it is delivered;
//   - the auth hook sends handshakes to the contract's Handshake method,
//     which binds a user id and per-session channel permissions.
//
// This package is the only place where gRPC status codes become Bayeux
// errors (see ErrorFromStatus).
package backend
