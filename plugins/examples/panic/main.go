// Command panic is a hostile WebAssembly filter: a message whose data
// holds "boom" makes it panic, which ends the Go guest. Other messages
// pass.
package main

import (
	"bytes"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

func init() {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if bytes.Contains(m.Data, []byte("boom")) {
			panic("boom")
		}
		return guest.Pass()
	})
}

func main() {}
