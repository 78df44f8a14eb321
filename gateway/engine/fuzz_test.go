package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// FuzzProcess feeds decoded batches from one client, then from a second,
// to an engine with the ack extension on. Whatever arrives, every message
// gets exactly one reply on its own channel, replies and delivered events
// encode to valid JSON in valid UTF-8, and the engine keeps serving: a
// clean handshake still works afterwards. The fuzzed bytes may name the
// live session with "$ID".
func FuzzProcess(f *testing.F) {
	for _, s := range []string{
		`[{"channel":"/meta/subscribe","clientId":"$ID","subscription":["/a/**","/b"]},{"channel":"/a/x","clientId":"$ID","data":{"k":1},"id":"1"}]`,
		`[{"channel":"/meta/connect","clientId":"$ID","connectionType":"long-polling","advice":{"timeout":0},"ext":{"ack":3}}]`,
		`[{"channel":"/meta/unsubscribe","clientId":"$ID","subscription":"/a/**"},{"channel":"/meta/disconnect","clientId":"$ID"}]`,
		`[{"channel":"/service/x","clientId":"$ID","data":null},{"channel":"/meta/handshake"}]`,
		`[{"channel":"/meta/bogus","clientId":"$ID"},{"channel":"/a/*","clientId":"$ID"},{"channel":"","id":"x"}]`,
		`[{"channel":"/meta/subscribe","clientId":"nope","subscription":5},{"channel":"/meta/connect","clientId":"$ID","ext":{"ack":"x"}}]`,
		`[{"channel":"/meta/subscribe","clientId":"$ID","subscription":"/a"},{"channel":"/a","clientId":"$ID","data":"\ud800","ext":{"k":"\udfff"}},{"channel":"/meta/connect","clientId":"$ID","connectionType":"long-polling"}]`,
		"[{\"channel\":\"/meta/subscribe\",\"clientId\":\"$ID\",\"subscription\":\"/a\"},{\"channel\":\"/a\",\"clientId\":\"$ID\",\"data\":\"\xff\xfe\xed\xa0\x80\"},{\"channel\":\"/meta/connect\",\"clientId\":\"$ID\",\"connectionType\":\"long-polling\"}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := engine.New(engine.Config{Ack: true, Timeout: time.Second})
		defer e.Close(context.Background())
		c := &engine.Client{Transport: "long-polling", Browser: "b1"}
		hs, b := process(t, e, c, []byte(`[{"channel":"/meta/handshake","version":"1.0","ext":{"ack":true}}]`))
		b.End()
		id := hs[0].ClientID
		data = bytes.ReplaceAll(data, []byte("$ID"), []byte(id))
		msgs, err := bayeux.Decode(data, 16)
		if err != nil {
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("Decode accepted %q, which is not valid UTF-8", data)
		}
		for range 2 {
			replies, b := process(t, e, c, data)
			b.End()
			if len(replies) != len(msgs) {
				t.Fatalf("%d replies to %d messages", len(replies), len(msgs))
			}
			for i, r := range replies {
				if r == nil || r.Channel != msgs[i].Channel && msgs[i].Invalid() == nil && msgs[i].Channel != "" {
					t.Fatalf("reply %d = %v to %s", i, r, msgs[i].String())
				}
			}
		}
		other := &engine.Client{Transport: "long-polling", Browser: "b2"}
		if hs, b := process(t, e, other, []byte(`[{"channel":"/meta/handshake","version":"1.0"}]`)); !hs[0].Successful {
			t.Fatalf("handshake after the fuzzed input failed: %s", hs[0].String())
		} else {
			b.End()
		}
	})
}

// process runs one batch, completing connects now, and checks every reply
// and every event delivered with it is valid JSON in valid UTF-8.
func process(t *testing.T, e *engine.Engine, c *engine.Client, data []byte) ([]*bayeux.Message, *engine.Batch) {
	t.Helper()
	msgs, err := bayeux.Decode(data, 16)
	if err != nil {
		t.Fatalf("Decode(%s): %v", data, err)
	}
	b := e.Process(context.Background(), c, msgs)
	var replies []*bayeux.Message
	for _, x := range b.Exchanges {
		if x.IsConnect() && x.Reply.Successful {
			for _, ev := range x.Session.Complete(x, nil, 0) {
				if !utf8.Valid(ev) || !json.Valid(ev) {
					t.Fatalf("event %q is not valid UTF-8 JSON", ev)
				}
			}
		}
		if enc := bayeux.AppendMessage(nil, x.Reply); !utf8.Valid(enc) || !json.Valid(enc) {
			t.Fatalf("reply %q is not valid UTF-8 JSON", enc)
		}
		replies = append(replies, x.Reply)
	}
	return replies, b
}
