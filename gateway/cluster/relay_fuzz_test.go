package cluster

import (
	"testing"
	"time"
)

// FuzzDecodeRelayRequest: a relayed request from NATS is untrusted; its
// decoder never panics and never lets out-of-bounds fields through.
func FuzzDecodeRelayRequest(f *testing.F) {
	f.Add([]byte("[{\"channel\":\"/meta/connect\"}]\n{\"t\":\"long-polling\",\"hold\":30000,\"id\":\"ab\"}"))
	f.Add([]byte("{}\n{\"t\":\"callback-polling\",\"h\":{\"X\":[\"1\"]}}"))
	f.Add([]byte("no separator"))
	f.Add([]byte("[]\n{\"hold\":-5}"))
	f.Add([]byte("[\n]\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, id, err := decodeRelayRequest(data)
		if err != nil {
			return
		}
		if len(id) > 64 || len(req.Header) > maxRelayHeaders || len(req.Browser) > maxRelayFieldLen || req.MaxHold < 0 || req.MaxHold > 0 && req.MaxHold < time.Millisecond {
			t.Fatalf("decodeRelayRequest(%q) let through id %q, %d headers, browser %d bytes, hold %v", data, id, len(req.Header), len(req.Browser), req.MaxHold)
		}
	})
}
