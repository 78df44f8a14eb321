package transport

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestTextFrame parses hand-built frames by RFC 6455 §5.2 for each length
// encoding (7-bit, 16-bit and 64-bit). Real clients read them in the
// conformance, Node and browser suites.
func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		payload := strings.Repeat("x", n)
		frame := textFrame(append(make([]byte, frameHeaderRoom), payload...))
		if frame[0] != 0x81 {
			t.Fatalf("len %d: first byte %#x; want FIN+text 0x81", n, frame[0])
		}
		if frame[1]&0x80 != 0 {
			t.Fatalf("len %d: server frames must not be masked", n)
		}
		size, off := int(frame[1]&0x7f), 2
		switch size {
		case 126:
			size, off = int(binary.BigEndian.Uint16(frame[2:])), 4
		case 127:
			size, off = int(binary.BigEndian.Uint64(frame[2:])), 10
		}
		if size != n || string(frame[off:]) != payload {
			t.Fatalf("len %d: header says %d, payload %d bytes", n, size, len(frame[off:]))
		}
	}
}
