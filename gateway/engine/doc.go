// Package engine is Cometgate's Bayeux protocol engine: the session table,
// the meta-channel handlers (handshake, connect, subscribe, unsubscribe,
// disconnect) and publish, advice, held /meta/connect wake-up, session
// expiry, the channel subscription trie, per-session bounded queues,
// encode-once fan-out, the security Policy, Extensions, listeners,
// narrowcast delivery and user binding.
//
// The engine knows nothing of HTTP or websockets. Transports decode a batch
// with package bayeux, hand it to [Engine.Process], and write the replies
// and queued events back in whatever framing they use. The engine calls a
// transport back only through the small [Conn] interface that a push
// transport (websocket) attaches to a session.
//
// # Concurrency
//
// Every exported method of Engine and Session may be called from any
// goroutine. Locks, outermost first: Engine.sessionsMu, then channels.mu
// (the trie), then Session.mu (see gateway/LOCKS.md); no lock is held
// while calling a Conn, a listener, a Policy, an Extension or a publish
// handler, and no lock is ever held across I/O. Encoded messages ([]byte) handed to a session queue
// are shared read-only between sessions and must never be modified.
//
// The engine starts one goroutine, the sweeper, which expires sessions and
// drops unused channels. Idle sessions own no goroutine, no timer and no
// buffer.
package engine
