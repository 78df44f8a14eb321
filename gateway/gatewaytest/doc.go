// Package gatewaytest runs Cometgate servers inside tests and talks Bayeux
// to them.
//
// NewServer starts a gateway on 127.0.0.1:0 and shuts it down when the test
// ends. Client is a minimal long-polling and callback-polling client over
// net/http with a cookie jar (the BAYEUX_BROWSER cookie binds HTTP sessions
// to their browser, so a client without cookies is refused); WSClient is a
// minimal websocket client over gorilla/websocket. Both send and receive
// Message values, plain decoded JSON objects, so that tests can check for
// fields that must be absent as well as present.
//
// The clients never retry, never follow advice and never add fields the
// test did not ask for beyond channel, id and clientId: they are probes for
// black-box tests, not CometD clients. Their methods return errors instead
// of failing the test, so they may be called from any goroutine; a Client
// or WSClient may be used by several goroutines at once, as long as none
// changes its exported fields meanwhile.
package gatewaytest
