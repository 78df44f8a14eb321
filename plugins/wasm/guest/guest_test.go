package guest_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want guest.Message
	}{
		{
			"full",
			`{"channel":"/chat/room","id":"7","direction":"inbound","source":"client","client":{"id":"c1","user":"alice","transport":"websocket"},"data":{"a":[1,{"b":"}"}]},"ext":{"k":true}}`,
			guest.Message{Channel: "/chat/room", ID: "7", Direction: "inbound", Source: "client",
				Client: guest.Client{ID: "c1", User: "alice", Transport: "websocket"},
				Data:   []byte(`{"a":[1,{"b":"}"}]}`), Ext: []byte(`{"k":true}`)},
		},
		{
			"escapes and spacing",
			" { \"channel\" : \"/a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\n\" , \"data\" : \"x\\\"y\" , \"ext\" : null } ",
			guest.Message{Channel: "/a\"b\\c\u00e9\U0001F600\n", Data: []byte(`"x\"y"`)},
		},
		{
			"scalars and unknown keys",
			`{"future":{"x":[1,2,{"y":"]"}]},"data":12.5e3,"channel":"/n","client":{"roles":["a"],"id":null}}`,
			guest.Message{Channel: "/n", Data: []byte(`12.5e3`)},
		},
		{"empty", `{}`, guest.Message{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m guest.Message
			if err := guest.ParseMessage([]byte(tc.in), &m); err != nil {
				t.Fatalf("ParseMessage(%s) = %v", tc.in, err)
			}
			if m.Channel != tc.want.Channel || m.ID != tc.want.ID || m.Direction != tc.want.Direction ||
				m.Source != tc.want.Source || m.Client != tc.want.Client ||
				!bytes.Equal(m.Data, tc.want.Data) || !bytes.Equal(m.Ext, tc.want.Ext) {
				t.Errorf("ParseMessage(%s) = %+v; want %+v", tc.in, m, tc.want)
			}
		})
	}
	bad := []string{``, `[]`, `{"channel"}`, `{"channel":"x"`, `{"channel":"x",}`, `{"channel":"a` + "\x01" + `"}`,
		`{"channel":"\q"}`, `{"channel":"\u12"}`, `{"data":}`, `{"data":"open}`, `{"channel":1}`}
	for _, in := range bad {
		var m guest.Message
		if err := guest.ParseMessage([]byte(in), &m); err == nil {
			t.Errorf("ParseMessage(%q) = nil; want an error", in)
		}
	}
}

func TestAppendRecord(t *testing.T) {
	rec := func(kind, flags byte, code uint16, a, b string) []byte {
		h := make([]byte, guest.HeaderSize)
		h[0], h[1] = kind, flags
		binary.LittleEndian.PutUint16(h[2:], code)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(a)))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(b)))
		return append(append(h, a...), b...)
	}
	tests := []struct {
		name string
		v    guest.Verdict
		want []byte
	}{
		{"pass", guest.Pass(), rec(0, 0, 0, "", "")},
		{"rewrite data", guest.Rewrite([]byte(`{"a":1}`), nil), rec(1, 1, 0, `{"a":1}`, "")},
		{"rewrite ext", guest.Rewrite(nil, []byte(`{}`)), rec(1, 2, 0, "", `{}`)},
		{"rewrite both", guest.Rewrite([]byte(`2`), []byte(`{"x":0}`)), rec(1, 3, 0, `2`, `{"x":0}`)},
		{"rewrite nothing", guest.Rewrite(nil, nil), rec(0, 0, 0, "", "")},
		{"reject", guest.Reject(429, "slow down"), rec(2, 0, 429, "slow down", "")},
		{"fail", guest.Fail("broken"), rec(3, 0, 0, "broken", "")},
	}
	for _, tc := range tests {
		if got := tc.v.AppendRecord(nil); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: AppendRecord = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	guest.Handle(func(m *guest.Message) guest.Verdict {
		if m.Client.User == "mallory" {
			return guest.Reject(403, "banned")
		}
		return guest.Rewrite([]byte(`"seen:`+string(m.Data[1:])), nil)
	})
	defer guest.Handle(nil)
	v, err := guest.Run([]byte(`{"channel":"/a","client":{"user":"mallory"},"data":"x"}`))
	if err != nil || !v.IsReject() || v.Code() != 403 || v.Reason() != "banned" {
		t.Errorf("Run(mallory) = %+v, %v; want 403 banned", v, err)
	}
	v, err = guest.Run([]byte(`{"channel":"/a","client":{"user":"bob"},"data":"x"}`))
	if err != nil || !v.IsRewrite() || string(v.Data()) != `"seen:x"` {
		t.Errorf("Run(bob) = %q, %v; want data \"seen:x\"", v.Data(), err)
	}
	if _, err := guest.Run([]byte(`{`)); err == nil {
		t.Error("Run(malformed) = nil error")
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"channel":"/chat/room","id":"7","client":{"id":"c1"},"data":{"a":[1,"]"]},"ext":{}}`))
	f.Add([]byte(`{"channel":"\ud83d\ude00\u0000","data":null}`))
	f.Add([]byte(`{"data":[[[[`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m guest.Message
		if guest.ParseMessage(in, &m) != nil {
			return
		}
		for _, raw := range [][]byte{m.Data, m.Ext} {
			if len(raw) > 0 && !bytes.Contains(in, raw) {
				t.Fatalf("raw value %q not from the input %q", raw, in)
			}
		}
	})
}

// indexed builds an input: an index over js with the given (offset,
// length) pairs.
func indexed(flags uint32, spans [7][2]uint32, js string) []byte {
	b := make([]byte, guest.IndexSize)
	binary.LittleEndian.PutUint32(b, guest.ABIVersion)
	binary.LittleEndian.PutUint32(b[4:], flags)
	binary.LittleEndian.PutUint32(b[8:], 1)
	binary.LittleEndian.PutUint32(b[12:], 2)
	for i, s := range spans {
		binary.LittleEndian.PutUint32(b[16+8*i:], s[0])
		binary.LittleEndian.PutUint32(b[20+8*i:], s[1])
	}
	return append(b, js...)
}

func TestParseIndexed(t *testing.T) {
	js := `{"channel":"/a\"b","data":[1]}`
	var spans [7][2]uint32
	spans[guest.FieldChannel] = [2]uint32{12, 5}
	spans[guest.FieldData] = [2]uint32{26, 3}
	var m guest.Message
	if err := guest.ParseIndexed(indexed(1<<guest.FieldChannel, spans, js), &m); err != nil {
		t.Fatal(err)
	}
	if m.Channel != `/a"b` || string(m.Data) != `[1]` || m.Direction != "inbound" || m.Source != "api" || m.Ext != nil {
		t.Errorf("ParseIndexed = %+v", m)
	}
	in := indexed(0, spans, js)
	if err := guest.ParseIndexed(in, &m); err != nil || m.Channel != `/a\"b` {
		t.Errorf("ParseIndexed without the escape flag = %q, %v; want the raw text", m.Channel, err)
	}
	c := m.Clone()
	in[guest.IndexSize+12] = 'X' // the strings are views of the input; a clone is not
	if m.Channel != `Xa\"b` || c.Channel != `/a\"b` {
		t.Errorf("after the input changed: Channel %q, its clone's %q", m.Channel, c.Channel)
	}

	outside := spans
	outside[guest.FieldData] = [2]uint32{26, 30}
	atZero := spans
	atZero[guest.FieldChannel] = [2]uint32{0, 3}
	version := indexed(0, spans, js)
	version[0] = 9
	dir := indexed(0, spans, js)
	dir[8] = 7
	for name, in := range map[string][]byte{
		"short":               indexed(0, spans, js)[:guest.IndexSize-1],
		"version":             version,
		"direction":           dir,
		"span outside":        indexed(0, outside, js),
		"escaped at offset 0": indexed(1<<guest.FieldChannel, atZero, js),
	} {
		if err := guest.ParseIndexed(in, &m); err == nil {
			t.Errorf("%s: ParseIndexed = nil; want an error", name)
		}
	}
}

func FuzzParseIndexed(f *testing.F) {
	var spans [7][2]uint32
	spans[0] = [2]uint32{12, 5}
	spans[5] = [2]uint32{26, 3}
	f.Add(indexed(1, spans, `{"channel":"/a\"b","data":[1]}`))
	f.Add(indexed(0x7f, spans, `{"channel":"\u0041\ud83d","data":[1]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m guest.Message
		guest.ParseIndexed(in, &m) // must not panic
	})
}
