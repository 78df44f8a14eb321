// Package transport serves the Bayeux endpoint over HTTP: the websocket,
// long-polling and callback-polling (JSONP) transports, the BAYEUX_BROWSER
// cookie that binds HTTP sessions to a browser, CORS for long-polling and
// the Origin allowlist of the websocket upgrade.
//
// One [Handler] serves every transport on one path and its sub-paths (the
// CometD JavaScript client appends /handshake, /connect, ...). Requests are
// routed by shape, as CometD does: a websocket upgrade, a GET carrying the
// callback parameter, a POST; anything else is "400 Unknown Bayeux
// Transport".
//
// # Websocket concurrency
//
// Reading: on Linux, idle connections are watched by one epoll instance
// (poller_linux.go); when one becomes readable, a short-lived goroutine
// reads and processes every frame that arrived, then re-arms it. Elsewhere,
// for TLS connections, or with WebSocketConfig.Poller off, each connection
// has one reader goroutine that only reads and hands each frame to a
// short-lived goroutine, so its own stack stays small. Frames of one
// connection are always processed one at a time, in order.
//
// Writing: every write to a connection happens under its write lock (wmu),
// including the library's control replies. Replies to a frame are written
// by its reader; messages the engine queues are written by flush workers
// (flush.go), warm goroutines handed a connection over a channel, which
// drain everything queued into as few frames as MessagesPerFrame and
// MaxFrameBytes allow, so bursts are batched. Data frames are built in place
// in pooled buffers and written with one system call. An idle connection
// owns no goroutine, no timer (when polled) and no write buffer.
package transport
