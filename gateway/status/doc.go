// Package status serves the gateway's live status page at /status on the
// control API's listener: sessions by transport, handshakes and messages
// per second, the top channels by subscribers and by publish rate, the
// backends with their state and call latency, and the recent warnings and
// errors of the log.
//
// The page authenticates like the control API (a bearer token, a verified
// client certificate, or nothing when the API requires no authentication;
// its Host header must name an allowed host). A token may be passed once
// as ?token=: the page answers with a redirect to /status that drops it
// from the address and sets it in a session cookie (HttpOnly,
// SameSite=Strict, Path=/status), which later requests of the page present
// instead.
//
// The page updates itself over the gateway's own Bayeux, with the official
// CometD JavaScript client (gateway/internal/cometdjs), through the same
// Bayeux endpoint mounted on the API listener at /status/cometd behind the
// same authentication: the page and its Bayeux share one origin, so no
// CORS rule or public-origin setting is involved. Its handshake carries a
// per-process random key (ext {"cometgate": {"statusKey": "..."}}) that
// only the served page holds; the Policy lets only such sessions subscribe
// to the server-side channels under /cometgate/ and lets no client publish
// there. While at least one status session is subscribed to Channel, one
// goroutine sends it a snapshot every Config.Interval (delivered to those
// sessions only, never broadcast, so no wildcard subscription sees it);
// with none, nothing runs.
//
// Recorder is a bounded ring of the last warnings and errors logged,
// filled by a slog.Handler wrapper.
package status
