// Command hugealloc is a hostile WebAssembly filter: a message whose data
// holds "grow" makes it allocate 1 GiB, far beyond the host's memory
// limit, so the Go runtime fails (out of memory). Other messages pass.
package main

import (
	"bytes"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

var hoard [][]byte

func init() {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if bytes.Contains(m.Data, []byte("grow")) {
			b := make([]byte, 1<<30)
			b[len(b)-1] = 1
			hoard = append(hoard, b)
		}
		return guest.Pass()
	})
}

func main() {}
