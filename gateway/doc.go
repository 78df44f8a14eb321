// Package gateway assembles Cometgate: it builds the protocol engine, the
// transports, the extensions and the demo from a config.Config, mounts them
// on one HTTP server (the Bayeux endpoint, /healthz and the demo page), and
// runs start-all-or-nothing and ordered shutdown. It is the only package
// that sees every other one.
package gateway
