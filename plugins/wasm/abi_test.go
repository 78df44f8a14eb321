package wasm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

// TestMessageRoundTrip: what the host writes is valid JSON, and the guest
// SDK reads back the same message.
func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    plugins.Message
		want guest.Message // for strings that do not survive as they are
	}{
		{"plain", plugins.Message{Channel: "/chat/room", ID: "1", Data: []byte(`{"text":"hi"}`), Ext: []byte(`{"ack":true}`),
			Direction: plugins.Inbound, Source: plugins.FromClient, Client: plugins.Client{ID: "c1", User: "alice", Transport: "websocket"}}, guest.Message{}},
		{"server, no id, no ext", plugins.Message{Channel: "/news", Data: []byte(`[1,2]`), Direction: plugins.Outbound, Source: plugins.FromAPI}, guest.Message{}},
		{"escapes", plugins.Message{Channel: "/a\"b\\c\n\t\x01\u00e9", ID: "</script>", Data: []byte(`"x"`), Direction: plugins.Inbound, Source: plugins.FromBackend,
			Client: plugins.Client{User: "\u2028\U0001F600"}}, guest.Message{}},
		{"invalid UTF-8", plugins.Message{Channel: "/a\xffb", Data: []byte(`0`), Direction: plugins.Inbound, Source: plugins.FromBroker},
			guest.Message{Channel: "/a\ufffdb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendMessage([]byte("prefix"), &tc.m)[len("prefix"):]
			if !json.Valid(b[indexSize:]) {
				t.Fatalf("appendMessage = %s: not valid JSON", b[indexSize:])
			}
			var g, gi guest.Message
			if err := guest.ParseMessage(b[indexSize:], &g); err != nil {
				t.Fatalf("ParseMessage(%s) = %v", b[indexSize:], err)
			}
			if err := guest.ParseIndexed(b, &gi); err != nil {
				t.Fatalf("ParseIndexed(%q) = %v", b, err)
			}
			if !sameMessage(g, gi) {
				t.Errorf("ParseIndexed = %+v; ParseMessage = %+v", gi, g)
			}
			wantChannel := tc.m.Channel
			if tc.want.Channel != "" {
				wantChannel = tc.want.Channel
			}
			if g.Channel != wantChannel || g.ID != tc.m.ID || g.Direction != tc.m.Direction.String() || g.Source != tc.m.Source.String() ||
				g.Client.ID != tc.m.Client.ID || g.Client.User != tc.m.Client.User || g.Client.Transport != tc.m.Client.Transport ||
				!bytes.Equal(g.Data, tc.m.Data) || !bytes.Equal(g.Ext, tc.m.Ext) {
				t.Errorf("round trip of %+v = %+v (wire %s)", tc.m, g, b)
			}
		})
	}
}

func sameMessage(a, b guest.Message) bool {
	return a.Channel == b.Channel && a.ID == b.ID && a.Direction == b.Direction && a.Source == b.Source &&
		a.Client == b.Client && bytes.Equal(bytes.TrimSpace(a.Data), bytes.TrimSpace(b.Data)) &&
		bytes.Equal(bytes.TrimSpace(a.Ext), bytes.TrimSpace(b.Ext))
}

func record(kind, flags byte, code uint16, a, b string) []byte {
	h := make([]byte, headerSize)
	h[0], h[1] = kind, flags
	binary.LittleEndian.PutUint16(h[2:], code)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(a)))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(b)))
	return append(append(h, a...), b...)
}

func TestDecodeRecord(t *testing.T) {
	good := []struct {
		name      string
		rec       []byte
		data, ext string // "-" unchanged
		rejection string
	}{
		{"pass", record(0, 0, 0, "", ""), "-", "-", ""},
		{"data", record(1, 1, 0, `{"a":1}`, ""), `{"a":1}`, "-", ""},
		{"ext", record(1, 2, 0, "", `{"b":2}`), "-", `{"b":2}`, ""},
		{"both", record(1, 3, 0, `1`, `{}`), `1`, `{}`, ""},
		{"ext removed", record(1, 2, 0, "", ""), "-", "", ""},
		{"reject", record(2, 0, 429, "too fast", ""), "-", "-", "429::too fast"},
		{"reject default code", record(2, 0, 0, "no", ""), "-", "-", "403::no"},
		{"reject reason made safe", record(2, 0, 403, "a:b,c", ""), "-", "-", "403::a b c"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeRecord(tc.rec)
			if err != nil {
				t.Fatalf("decodeRecord = %v", err)
			}
			m := testMessage(`"orig"`)
			m.Ext = []byte(`{"orig":1}`)
			err = v.apply(m)
			if tc.rejection != "" {
				if r, ok := plugins.AsRejection(err); !ok || r.Error() != tc.rejection {
					t.Errorf("apply = %v; want %s", err, tc.rejection)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply = %v", err)
			}
			check := func(part string, got []byte, want, orig string) {
				if want == "-" {
					want = orig
				}
				if string(got) != want {
					t.Errorf("%s = %q; want %q", part, got, want)
				}
			}
			check("data", m.Data, tc.data, `"orig"`)
			check("ext", m.Ext, tc.ext, `{"orig":1}`)
		})
	}
	// The record is guest memory: what the host keeps must be a copy.
	rec := record(1, 1, 0, `"new"`, "")
	v, _ := decodeRecord(rec)
	copy(rec[headerSize:], `"bad"`)
	if string(v.data) != `"new"` {
		t.Errorf("decoded data aliases the record: %s", v.data)
	}

	bad := []struct {
		name string
		rec  []byte
		want string
	}{
		{"short", []byte{1, 1, 0}, "shorter than its header"},
		{"lengths too long", record(1, 1, 0, "ab", "")[:headerSize+1], "do not add up"},
		{"lengths too short", append(record(1, 1, 0, "ab", ""), 'x'), "do not add up"},
		{"unknown flags", record(1, 5, 0, "1", ""), "unknown rewrite flags"},
		{"length without flag", record(1, 2, 0, "1", ""), "without their flags"},
		{"code too low", record(2, 0, 200, "x", ""), "rejection code 200"},
		{"code too high", record(2, 0, 600, "x", ""), "rejection code 600"},
		{"long reason", record(2, 0, 403, strings.Repeat("x", maxReason+1), ""), "reason of"},
		{"reason and more", record(2, 0, 403, "x", "y"), "reason of"},
		{"unknown kind", record(7, 0, 0, "", ""), "unknown kind 7"},
	}
	for _, tc := range bad {
		_, err := decodeRecord(tc.rec)
		if !errors.Is(err, errGarbage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: decodeRecord = %v; want a malformed verdict mentioning %q", tc.name, err, tc.want)
		}
	}

	v, err := decodeRecord(record(3, 0, 0, "cannot\ndecide", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.apply(testMessage(`1`)); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "cannot decide") {
		t.Errorf("a failure record applies as %v; want a one-line error", err)
	}
	if _, ok := plugins.AsRejection(v.apply(testMessage(`1`))); ok {
		t.Error("a failure record applies as a rejection")
	}
}

// TestRecordRoundTrip: the SDK's records decode to what the guest said.
func TestRecordRoundTrip(t *testing.T) {
	for _, gv := range []guest.Verdict{
		guest.Rewrite([]byte(`{"x":"y"}`), []byte(`{"z":1}`)),
		guest.Rewrite([]byte(`[]`), nil),
		guest.Reject(451, "unavailable"),
	} {
		v, err := decodeRecord(gv.AppendRecord(nil))
		if err != nil {
			t.Fatalf("decodeRecord(%+v) = %v", gv, err)
		}
		if string(v.data) != string(gv.Data()) || string(v.ext) != string(gv.Ext()) || gv.IsReject() && (v.code != gv.Code() || v.reason != gv.Reason()) {
			t.Errorf("round trip of %+v = %+v", gv, v)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(record(1, 3, 0, `{"a":1}`, `{}`))
	f.Add(record(2, 0, 403, "no", ""))
	f.Add(record(3, 0, 0, "x", ""))
	f.Add([]byte{1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		v, err := decodeRecord(rec)
		if err != nil {
			return
		}
		if len(v.data)+len(v.ext)+len(v.reason)+headerSize != len(rec) {
			t.Fatalf("decoded %d+%d+%d bytes from a record of %d", len(v.data), len(v.ext), len(v.reason), len(rec))
		}
		if v.kind == kindReject && v.code != 0 && (v.code < 400 || v.code > 599) {
			t.Fatalf("accepted code %d", v.code)
		}
	})
}

func FuzzAppendMessage(f *testing.F) {
	f.Add("/chat/room", "1", "alice", `{"a":1}`)
	f.Add("/a\"\\\x00\xff", "\u2028", "\U0001F600", `"x"`)
	f.Fuzz(func(t *testing.T, channel, id, user, data string) {
		if !json.Valid([]byte(data)) {
			return
		}
		m := plugins.Message{Channel: channel, ID: id, Data: []byte(data), Direction: plugins.Inbound, Source: plugins.FromClient,
			Client: plugins.Client{User: user}}
		b := appendMessage(nil, &m)
		if !json.Valid(b[indexSize:]) {
			t.Fatalf("appendMessage(%q, %q, %q) = %s: invalid JSON", channel, id, user, b[indexSize:])
		}
		var g, gi guest.Message
		if err := guest.ParseMessage(b[indexSize:], &g); err != nil {
			t.Fatalf("ParseMessage(%s) = %v", b[indexSize:], err)
		}
		if err := guest.ParseIndexed(b, &gi); err != nil || !sameMessage(g, gi) {
			t.Fatalf("ParseIndexed = %+v, %v; ParseMessage = %+v", gi, err, g)
		}
		if utf8.ValidString(channel) && g.Channel != channel || utf8.ValidString(user) && g.Client.User != user {
			t.Fatalf("round trip: %q %q -> %q %q", channel, user, g.Channel, g.Client.User)
		}
	})
}
