package transport

import "encoding/binary"

// frameHeaderRoom is the room reserved at the start of an outgoing buffer
// for the websocket frame header, so that a frame is built in place and
// written with one system call.
const frameHeaderRoom = 10

// textFrame turns buf, whose payload starts at frameHeaderRoom, into an
// unmasked, final text frame (RFC 6455 §5.2) and returns the bytes to
// write.
func textFrame(buf []byte) []byte {
	n := len(buf) - frameHeaderRoom
	var h int
	switch {
	case n <= 125:
		h = 2
		buf[frameHeaderRoom-1] = byte(n)
	case n <= 0xffff:
		h = 4
		buf[frameHeaderRoom-3] = 126
		binary.BigEndian.PutUint16(buf[frameHeaderRoom-2:], uint16(n))
	default:
		h = 10
		buf[frameHeaderRoom-9] = 127
		binary.BigEndian.PutUint64(buf[frameHeaderRoom-8:], uint64(n))
	}
	start := frameHeaderRoom - h
	buf[start] = 0x81 // FIN + text
	return buf[start:]
}
