package transport

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// readerHijacker takes over an upgraded connection for the websocket
// library. It keeps the connection itself (the library only sees a
// wrapper that notes what its upgrade response negotiated) and, when size
// is set, hands the library a bufio.Reader of the transport's own (the
// library reuses a hijacked reader when its ReadBufferSize is 0), so that
// the poller can tell whether a frame is still buffered after a read.
type readerHijacker struct {
	http.ResponseWriter
	size    int
	deflate bool // permessage-deflate may be negotiated: watch the response
	conn    net.Conn
	up      *upgradeConn // nil unless deflate
	br      *bufio.Reader
}

// Hijack takes over the connection, with a reader of h.size bytes if set.
func (h *readerHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	h.conn = conn
	if h.size > 0 && brw.Reader.Buffered() == 0 { // else the library refuses early data itself
		h.br = bufio.NewReaderSize(conn, h.size)
		brw = bufio.NewReadWriter(h.br, brw.Writer)
	}
	if !h.deflate {
		return conn, brw, nil
	}
	h.up = &upgradeConn{Conn: conn}
	return h.up, brw, nil
}

// negotiatedDeflate reports whether the upgrade accepted permessage-deflate.
func (h *readerHijacker) negotiatedDeflate() bool { return h.up != nil && h.up.deflate }

// upgradeConn notes whether the upgrade response, the first thing the
// websocket library writes, accepted permessage-deflate: the library
// negotiates compression but does not say so, and this package writes
// frames itself.
type upgradeConn struct {
	net.Conn
	wrote   bool
	deflate bool
}

func (u *upgradeConn) Write(p []byte) (int, error) {
	if !u.wrote {
		u.wrote = true
		u.deflate = bytes.Contains(p, []byte("\r\nSec-WebSocket-Extensions: permessage-deflate"))
	}
	return u.Conn.Write(p)
}
