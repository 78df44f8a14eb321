// Command timestamp is a WebAssembly filter that adds the server's time
// to a message's data, when the data is a JSON object: the field (config
// "field", default "timestamp") is set to the Unix time in milliseconds.
// Other data passes unchanged. It uses encoding/json, which is simple but
// costs several microseconds per message in the guest.
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

var field = "timestamp"

func init() {
	guest.Configure(func(cfg []byte) error {
		var o struct {
			Field string `json:"field"`
		}
		if err := json.Unmarshal(cfg, &o); err != nil {
			return fmt.Errorf("timestamp: config: %w", err)
		}
		if o.Field != "" {
			field = o.Field
		}
		return nil
	})
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if len(m.Data) == 0 || m.Data[0] != '{' {
			return guest.Pass()
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &obj); err != nil {
			return guest.Fail("timestamp: " + err.Error())
		}
		obj[field] = strconv.AppendInt(nil, time.Now().UnixMilli(), 10)
		out, err := json.Marshal(obj)
		if err != nil {
			return guest.Fail("timestamp: " + err.Error())
		}
		return guest.Rewrite(out, nil)
	})
}

func main() {}
