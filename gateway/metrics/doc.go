// Package metrics exposes a node's counters to Prometheus, in the
// cometgate_ namespace.
//
// A Metrics value owns its own registry (never the library's global
// default), with the Go runtime and process collectors. Most series are
// read at scrape time from the counters the engine, the transports and the
// backend router already keep (Register), so the message path pays
// nothing for them; the histograms (long-poll answer latency, remote-call
// latency) and the API request counter are recorded as events happen,
// through the functions the server passes to those packages as hooks.
//
// Labels are bounded: transport, channel class (meta, service,
// broadcast), route pattern and backend name from the configuration, gRPC
// code, websocket close code, close reason, limit name, API method. No
// label ever carries a client id or a channel name from a client.
//
// Every method may be called concurrently.
package metrics
