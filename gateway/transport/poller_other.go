//go:build !linux

package transport

import "errors"

// poller is only implemented on Linux; elsewhere every websocket
// connection has its own reader goroutine.
type poller struct{}

func newPoller() (*poller, error)     { return nil, errors.New("transport: no poller on this platform") }
func (p *poller) add(*wsConn) error   { return nil }
func (p *poller) rearm(*wsConn) error { return nil }
func (p *poller) remove(*wsConn)      {}
func (p *poller) close()              {}
