package transport

import (
	"bufio"
	"net"
	"net/http"
)

// readerHijacker hands the websocket library a bufio.Reader of the
// transport's own (the library reuses a hijacked reader when its
// ReadBufferSize is 0), so that the poller can tell whether a frame is
// still buffered after a read.
type readerHijacker struct {
	http.ResponseWriter
	size int
	br   *bufio.Reader
}

// Hijack takes over the connection with a reader of h.size bytes.
func (h *readerHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err // the library refuses early data itself
	}
	h.br = bufio.NewReaderSize(conn, h.size)
	return conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}
