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
// (poller_linux.go); when one becomes readable, a worker reads and
// processes every frame that arrived, then re-arms it. A TLS connection's
// TCP socket is watched the same way, its frames read through the TLS
// layer; records that layer already holds are drained before re-arming
// (wsConn.buffered). Elsewhere, for connections that arrived with bytes
// buffered by net/http, or with WebSocketConfig.Poller off, each connection has one
// reader goroutine that only reads and hands each frame to a worker, so its
// own stack stays small. Workers are goroutines reused while frames keep
// coming (internal/workers), which keeps their grown stacks. Frames of one
// connection are always processed one at a time, in order.
//
// Writing (wswrite.go): every frame, control frames included, is framed by
// this package and offered to the socket under the connection's write lock
// (wmu) with one non-blocking write; what the socket does not take waits
// in the connection's pending bytes and is written by a goroutine of that
// connection alone, so no worker ever waits on a socket. While it waits,
// the connection is stalled: queued messages stay in the session's
// bounded queue. Replies to a frame are written
// by its reader, preceded by what is queued for the session. Messages the
// engine queues later are written by flush workers (flush.go): a connection
// with something to send joins a shared list and waits FlushDelay there so
// that broadcasts share frames, or joins an urgent list served at once
// when the message is for its session alone (a remote call's answer).
// Workers drain the queue into as few frames as MessagesPerFrame and
// MaxFrameBytes allow. A publish whose answer follows (a remote call) has
// its reply held until the answer comes or AnswerWait passes, so that both
// share one frame. Data frames are built in place in pooled buffers and
// written with one system call. An idle connection owns no goroutine, no
// timer (when polled) and no write buffer.
package transport
