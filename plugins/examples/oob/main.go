// Command oob is a hostile WebAssembly filter: a message whose data holds
// "trap" makes it read far outside its linear memory, which traps. Other
// messages pass.
package main

import (
	"bytes"
	"unsafe"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

var sink byte

func init() {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if bytes.Contains(m.Data, []byte("trap")) {
			var x byte
			sink = *(*byte)(unsafe.Add(unsafe.Pointer(&x), 0x7ff00000)) // ~2 GiB past: beyond memory
		}
		return guest.Pass()
	})
}

func main() {}
