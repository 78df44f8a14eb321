// Command loop is a hostile WebAssembly filter: a message whose data
// holds "loop" makes it loop forever (the host's time limit stops it).
// Other messages pass.
package main

import (
	"bytes"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

var spins uint64

func init() {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if bytes.Contains(m.Data, []byte("loop")) {
			for {
				spins++
			}
		}
		return guest.Pass()
	})
}

func main() {}
