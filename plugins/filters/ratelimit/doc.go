// Package ratelimit is the "ratelimit" filter: a token bucket
// (golang.org/x/time/rate) per session, per user or per channel. A
// message over the limit is refused with the Bayeux error
// 429::rate_limited; the pipeline counts rejections per filter.
//
// Keys: per session, a session's client id; per user, the user id bound
// at handshake, or the client id for a session without a user (users and
// sessions never share a bucket); per channel, the channel name, shared by
// every publisher. Messages from the server itself (the control API,
// backends: the zero Client) are never limited. As an outbound filter,
// it limits deliveries per recipient (the message's Client), dropping the
// excess for that session only.
//
// Memory is bounded by maxKeys: the table of limiters never holds more.
// When it is full, a message with a new key is refused with 429, like an
// over-limit one, and counted (Refused; a warning is logged at most once
// per sweep); limiters already tracked keep working. Evicting tracked
// limiters instead would let whoever makes new keys (new sessions,
// channels) reset other clients' buckets, so the table fails closed; size
// maxKeys above the number of keys active within idleTimeout. A sweeper
// goroutine, started at Provision and stopped at Cleanup, drops each
// limiter idle for idleTimeout once its bucket has refilled, when it is
// no different from a new one, so dropping never grants more than the
// limit.
//
// The table is split into 64 shards, each with its own lock, by a hash of
// the key; a message takes one shard's read lock (a new key its write
// lock) and the limiter's own lock. Safe for heavy concurrent use.
//
// Options:
//
//	filters:
//	  - channels: ["/chat/**"]
//	    inbound:
//	      - module: ratelimit
//	        rate: 5           # messages per second, required
//	        burst: 10         # default: rate rounded up, at least 1
//	        per: session      # session, user or channel; default session
//	        maxKeys: 100000   # default 100000
//	        idleTimeout: 1m   # default 1m
package ratelimit
