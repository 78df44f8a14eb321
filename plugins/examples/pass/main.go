// Command pass is the smallest useful WebAssembly filter: it refuses
// messages on /blocked/ channels and passes the others unchanged, doing no
// work proportional to the message. It measures what a call costs with
// the Go runtime and the SDK alone.
package main

import (
	"strings"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

func init() {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if strings.HasPrefix(m.Channel, "/blocked/") {
			return guest.Reject(403, "blocked")
		}
		return guest.Pass()
	})
}

func main() {}
