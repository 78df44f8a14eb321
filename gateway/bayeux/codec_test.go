package bayeux_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

func TestDecode(t *testing.T) {
	msgs, err := bayeux.Decode([]byte(` [{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true},"unknown":{"x":1}},
		{"id":7,"channel":"/foo","clientId":"abc","data":{"a":[1,2]}},
		{"channel":"/meta/connect","advice":{"timeout":0,"interval":1500.7}}] `), 10)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("len = %d; want 3", len(msgs))
	}
	if m := msgs[0]; m.Channel != "/meta/handshake" || m.ID != "1" || m.Version != "1.0" || len(m.SupportedConnectionTypes) != 1 || string(m.Ext) != `{"ack":true}` {
		t.Errorf("msgs[0] = %+v", m)
	}
	if m := msgs[1]; m.ID != "7" || m.ClientID != "abc" || string(m.Data) != `{"a":[1,2]}` || m.Invalid() != nil {
		t.Errorf("msgs[1] = %+v (numeric id must become the string \"7\")", m)
	}
	if a := msgs[2].Advice; a == nil || a.Timeout != 0 || a.Interval != 1500 || a.MaxInterval != -1 {
		t.Errorf("msgs[2].Advice = %+v", a)
	}
}

func TestDecodeSingleObject(t *testing.T) {
	msgs, err := bayeux.Decode([]byte(`{"channel":"/meta/handshake"}`), 10)
	if err != nil || len(msgs) != 1 || msgs[0].Channel != "/meta/handshake" {
		t.Fatalf("Decode(object) = %v, %v", msgs, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "  ", bayeux.ErrEmptyBody},
		{"truncated", `[{"channel":`, bayeux.ErrBadJSON},
		{"garbage", `hello`, bayeux.ErrBadJSON},
		{"number", `42`, bayeux.ErrNotMessages},
		{"empty array", `[]`, bayeux.ErrEmptyBatch},
		{"too many", `[{},{},{}]`, bayeux.ErrBatchTooLarge},
		{"trailing garbage", `[{}]x`, bayeux.ErrBadJSON},
		{"invalid UTF-8 in data", "[{\"channel\":\"/a\",\"data\":\"\xff\xfe\xed\xa0\x80\"}]", bayeux.ErrInvalidUTF8},
		{"invalid UTF-8 in ext", "{\"channel\":\"/a\",\"ext\":{\"k\":[\"\xff\"]}}", bayeux.ErrInvalidUTF8},
		{"invalid UTF-8 in a string field", "[{\"channel\":\"/a\xc3\"}]", bayeux.ErrInvalidUTF8},
		{"overlong encoding", "[{\"channel\":\"/a\",\"data\":\"\xc0\xaf\"}]", bayeux.ErrInvalidUTF8},
		{"lone surrogate as raw bytes", "[{\"channel\":\"/a\",\"subscription\":\"/\xed\xa0\x80\"}]", bayeux.ErrInvalidUTF8},
		{"beyond U+10FFFF", "[{\"channel\":\"/a\",\"data\":\"\xf4\x90\x80\x80\"}]", bayeux.ErrInvalidUTF8},
		{"invalid UTF-8 in an unknown field", "[{\"channel\":\"/a\",\"x\":\"\xe2\x82\"}]", bayeux.ErrInvalidUTF8},
		{"invalid UTF-8 outside JSON", "\xff", bayeux.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		if _, err := bayeux.Decode([]byte(tt.in), 2); !errors.Is(err, tt.want) {
			t.Errorf("%s: Decode(%q) error = %v; want %v", tt.name, tt.in, err, tt.want)
		}
	}
}

// TestDecodeEscapedSurrogates checks that escaped lone surrogates, valid
// JSON that is ASCII on the wire, pass: raw fields keep the escapes and
// string fields get U+FFFD, so nothing encodes to invalid UTF-8.
func TestDecodeEscapedSurrogates(t *testing.T) {
	for _, in := range []string{
		`[{"channel":"/a","data":"\ud800x","ext":{"k":"\udfff"}}]`,
		`[{"channel":"/\ud800","data":"\ud800x","ext":{"k":"\udfff"}}]`, // encoding/json path
	} {
		msgs, err := bayeux.Decode([]byte(in), 10)
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		m := msgs[0]
		if string(m.Data) != `"\ud800x"` || string(m.Ext) != `{"k":"\udfff"}` {
			t.Errorf("Decode(%s): data %s, ext %s; want the escapes kept", in, m.Data, m.Ext)
		}
		if !utf8.ValidString(m.Channel) {
			t.Errorf("Decode(%s): channel %q is not valid UTF-8", in, m.Channel)
		}
		if out := bayeux.AppendMessage(nil, &m); !utf8.Valid(out) || !json.Valid(out) {
			t.Errorf("Decode(%s) encodes to %q", in, out)
		}
	}
}

func TestValidJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"object", `{"a":[1,"é"]}`, nil},
		{"escaped lone surrogate", `"\ud800"`, nil},
		{"empty", ``, bayeux.ErrBadJSON},
		{"not JSON", `{"a":`, bayeux.ErrBadJSON},
		{"two values", `1 2`, bayeux.ErrBadJSON},
		{"invalid UTF-8", "\"\xff\xfe\xed\xa0\x80\"", bayeux.ErrInvalidUTF8},
		{"overlong", "\"\xc0\xaf\"", bayeux.ErrInvalidUTF8},
		{"lone surrogate bytes", "{\"k\":\"\xed\xa0\x80\"}", bayeux.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		if err := bayeux.ValidJSON([]byte(tt.in)); !errors.Is(err, tt.want) {
			t.Errorf("%s: ValidJSON(%q) = %v; want %v", tt.name, tt.in, err, tt.want)
		}
	}
}

// TestAppendMessageInvalidUTF8 checks the encoder's last line of defence:
// raw fields holding invalid UTF-8 are written with U+FFFD in its place.
func TestAppendMessageInvalidUTF8(t *testing.T) {
	m := &bayeux.Message{
		Channel:      "/a",
		Data:         json.RawMessage("\"x\xff\xfe\xed\xa0\x80y\""),
		Ext:          json.RawMessage("{\"k\":\"\xc0\xaf\"}"),
		Subscription: json.RawMessage("\"/\xf4\x90\x80\x80\""),
		ExtFields:    []bayeux.ExtField{{Key: "v", Value: json.RawMessage("\"\xe2\x82\"")}},
	}
	got := bayeux.AppendMessage(nil, m)
	if !utf8.Valid(got) || !json.Valid(got) {
		t.Fatalf("AppendMessage = %q; want valid UTF-8 JSON", got)
	}
	var back struct {
		Data string
		Ext  map[string]string
	}
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.Data != "x\ufffd\ufffd\ufffd\ufffd\ufffdy" || back.Ext["k"] != "\ufffd\ufffd" || back.Ext["v"] != "\ufffd\ufffd" {
		t.Errorf("AppendMessage = %s; want every invalid byte as U+FFFD", got)
	}
}

func TestDecodeWrongTypes(t *testing.T) {
	msgs, err := bayeux.Decode([]byte(`[{"channel":"/ok","id":"1"},{"channel":5},{"channel":"/x","clientId":7},{"channel":"/x","id":{"a":1}},{"channel":"/x","id":"a-b"},7]`), 10)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := []string{"", "400::channel_missing", "400:clientId:field_invalid", "405::message_id_invalid", "405::message_id_invalid", "400:message:field_invalid"}
	for i, w := range want {
		got := ""
		if e := msgs[i].Invalid(); e != nil {
			got = e.Error()
		}
		if got != w {
			t.Errorf("msgs[%d].Invalid() = %q; want %q", i, got, w)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
		err  *bayeux.Error
	}{
		{`"/foo"`, []string{"/foo"}, nil},
		{`["/a","/b"]`, []string{"/a", "/b"}, nil},
		{``, nil, bayeux.ErrSubscriptionMissing},
		{`null`, nil, bayeux.ErrSubscriptionMissing},
		{`42`, nil, bayeux.ErrSubscriptionInvalid},
		{`[1]`, nil, bayeux.ErrSubscriptionInvalid},
		{`[]`, nil, bayeux.ErrSubscriptionInvalid},
	}
	for _, tt := range tests {
		m := bayeux.Message{Subscription: json.RawMessage(tt.raw)}
		got, err := m.Subscriptions()
		if err != tt.err || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Subscriptions(%s) = %v, %v; want %v, %v", tt.raw, got, err, tt.want, tt.err)
		}
	}
}

func TestAppendMessage(t *testing.T) {
	m := &bayeux.Message{
		Channel: "/meta/connect", ID: "2", Reply: true, Successful: false, Error: "402::session_unknown",
		Advice:    &bayeux.Advice{Reconnect: "handshake", Interval: 0, Timeout: -1, MaxInterval: -1},
		Ext:       json.RawMessage(`{"a":1}`),
		ExtFields: []bayeux.ExtField{{Key: "ack", Value: json.RawMessage(`3`)}},
	}
	got := string(bayeux.AppendMessage(nil, m))
	want := `{"channel":"/meta/connect","id":"2","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake","interval":0},"ext":{"a":1,"ack":3}}`
	if got != want {
		t.Errorf("AppendMessage = %s\nwant            %s", got, want)
	}
	ev := string(bayeux.AppendMessage(nil, &bayeux.Message{Channel: "/x", Data: json.RawMessage(`"\u2028"`)}))
	if ev != `{"channel":"/x","data":"\u2028"}` {
		t.Errorf("event = %s", ev)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\n\t\x01", `"\n\t\u0001"`},
		{"é\u2028\u2029", `"é\u2028\u2029"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
	}
	for _, tt := range tests {
		got := string(bayeux.AppendString(nil, tt.in))
		if got != tt.want {
			t.Errorf("AppendString(%q) = %s; want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("AppendString(%q) is not valid JSON: %v", tt.in, err)
		}
	}
}

// FuzzDecode checks that Decode refuses input that is not valid UTF-8,
// and that whatever it accepts encodes back to valid UTF-8 JSON that
// decodes again.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`[{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"]}]`,
		`{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0}}`,
		`[{"channel":"/foo","data":{"x":[1,2,{"y":null}]},"ext":{"ack":3},"id":7}]`,
		`[{"channel":"/meta/subscribe","subscription":["/a","/b/**"]}]`,
		`[{"channel":5},{"id":{}},7,"x",null]`,
		`[]`, `[{`, `{}`, `null`, ``, `[{"advice":{"interval":-1,"timeout":1e309}}]`,
		`[{"channel":"/\ud800","data":"\udc00","ext":{"\ud800":1}}]`,
		"[{\"channel\":\"/foo\",\"data\":\"\xff\xfe\xed\xa0\x80\"}]",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := bayeux.Decode(data, 64)
		if err != nil {
			if msgs != nil {
				t.Fatalf("Decode returned messages with error %v", err)
			}
			if !utf8.Valid(data) && !errors.Is(err, bayeux.ErrInvalidUTF8) {
				t.Fatalf("Decode(%q) error = %v; want ErrInvalidUTF8", data, err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("Decode accepted %q, which is not valid UTF-8", data)
		}
		if len(msgs) == 0 || len(msgs) > 64 {
			t.Fatalf("Decode returned %d messages without error", len(msgs))
		}
		// Whatever was accepted must encode back to valid UTF-8 JSON.
		var encoded [][]byte
		for i := range msgs {
			m := msgs[i]
			m.Reply = true
			m.Error = "400::x"
			encoded = append(encoded, bayeux.AppendMessage(nil, &m))
		}
		out := bayeux.AppendBatch(nil, encoded...)
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("re-encoding %q gave %q, not valid UTF-8 JSON", data, out)
		}
		if _, err := bayeux.Decode(out, 64); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v\n%s", err, out)
		}
	})
}

// FuzzAppendMessage encodes messages with arbitrary raw fields and
// strings: the output is always valid UTF-8, and valid JSON when the raw
// fields pass ValidJSON.
func FuzzAppendMessage(f *testing.F) {
	f.Add("/a", []byte(`{"k":"v"}`), []byte(`{"ack":1}`), "x")
	f.Add("/\xff", []byte("\"\xff\xfe\xed\xa0\x80\""), []byte("{\"k\":\"\xc0\xaf\"}"), "\xed\xa0\x80")
	f.Add("/a", []byte(`"\ud800"`), []byte(`{"k":"\udfff"}`), "\u2028")
	f.Fuzz(func(t *testing.T, channel string, data, ext []byte, errText string) {
		m := &bayeux.Message{Channel: channel, Data: data, Ext: ext, Reply: true, Error: errText,
			ExtFields: []bayeux.ExtField{{Key: errText, Value: data}}}
		out := bayeux.AppendMessage(nil, m)
		if !utf8.Valid(out) {
			t.Fatalf("AppendMessage gave %q, not valid UTF-8", out)
		}
		if len(data) > 0 && bayeux.ValidJSON(data) == nil && (len(ext) == 0 || isObject(ext)) && !json.Valid(out) {
			t.Fatalf("AppendMessage of valid raw fields gave %q, not JSON", out)
		}
	})
}

// isObject reports whether raw is a valid JSON object, as an ext must be
// for server-added fields to merge into it.
func isObject(raw []byte) bool {
	var obj map[string]json.RawMessage
	return bayeux.ValidJSON(raw) == nil && json.Unmarshal(raw, &obj) == nil && obj != nil
}

func BenchmarkDecode(b *testing.B) {
	batch := []byte(`[{"id":"12","channel":"/chat/demo","clientId":"ouwyfr7tqeov3yurp57ao2vnuc5u2mhq","data":{"user":"alice","chat":"hello, world"}},{"id":"13","channel":"/meta/connect","clientId":"ouwyfr7tqeov3yurp57ao2vnuc5u2mhq","connectionType":"websocket","ext":{"ack":4}}]`)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := bayeux.Decode(batch, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	m := &bayeux.Message{Channel: "/chat/demo", Data: json.RawMessage(`{"user":"alice","chat":"hello, world"}`)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = bayeux.AppendMessage(buf[:0], m)
	}
}
