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
// Websocket connections own one reader goroutine each. Writes happen under
// a per-connection lock, either from the reader (replies) or from a
// short-lived flush goroutine started when the engine queues messages for an
// idle connection; it drains everything queued into as few frames as the
// frame limits allow, so bursts are batched. An idle connection owns no
// writer goroutine and no write buffer.
package transport
