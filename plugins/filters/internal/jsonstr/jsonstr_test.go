package jsonstr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins/filters/internal/jsonstr"
)

// walk returns the decoded string values Iter yields.
func walk(t testing.TB, data []byte, fields []string) ([]string, error) {
	t.Helper()
	var got []string
	it := jsonstr.NewIter(data, fields)
	for it.Next() {
		raw := it.Raw()
		if string(data[it.Start()+1:it.End()-1]) != string(raw) || data[it.Start()] != '"' || data[it.End()-1] != '"' {
			t.Fatalf("Start/End (%d, %d) do not bracket Raw %q", it.Start(), it.End(), raw)
		}
		got = append(got, string(jsonstr.AppendUnquote(nil, raw)))
	}
	return got, it.Err()
}

// reference returns the string values of data in document order, by
// encoding/json's token stream, limited to fields as Iter is.
func reference(t testing.TB, data []byte, fields []string) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct{ object, wantKey bool }
	var stack []frame
	var out []string
	sel := fields == nil
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = !stack[len(stack)-1].wantKey
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if isKey {
				if fields != nil && len(stack) == 1 {
					sel = slices.Contains(fields, v)
				}
				continue
			}
			if sel {
				out = append(out, v)
			}
		}
	}
}

func TestIter(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		fields []string
		want   []string
	}{
		{"scalar string", `"a<b"`, nil, []string{"a<b"}},
		{"scalar string with fields", `"a<b"`, []string{"x"}, nil},
		{"number", `12.5e3`, nil, nil},
		{"keys skipped", `{"k":"v","k2" : "v2"}`, nil, []string{"v", "v2"}},
		{"nested", `{"a":[1,"x",{"b":"y"}],"c":{"d":["z"]}}`, nil, []string{"x", "y", "z"}},
		{"escapes", `["\"q\"","\\","\u003cb\u003e","\ud83d\ude00","\n"]`, nil, []string{`"q"`, `\`, "<b>", "😀", "\n"}},
		{"escaped quote before key", `{"a\"":"b\\","c":"d"}`, nil, []string{`b\`, "d"}},
		{"fields", `{"text":"t","meta":{"text":"m"},"list":["l"]}`, []string{"text", "list"}, []string{"t", "l"}},
		{"fields nested keys do not select", `{"meta":{"text":"m"},"text":"t"}`, []string{"text"}, []string{"t"}},
		{"fields escaped key", `{"t\u0065xt":"t","other":"o"}`, []string{"text"}, []string{"t"}},
		{"fields on array", `["text","x"]`, []string{"text"}, nil},
		{"white space", " {\n\t\"a\" :\r\n \"b\" , \"c\":[ \"d\" ] } ", nil, []string{"b", "d"}},
		{"empty strings", `{"":""}`, nil, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walk(t, []byte(tt.data), tt.fields)
			if err != nil {
				t.Fatalf("Iter(%s) error %v", tt.data, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Iter(%s, %v) = %q; want %q", tt.data, tt.fields, got, tt.want)
			}
			if ref := reference(t, []byte(tt.data), tt.fields); !slices.Equal(got, ref) {
				t.Errorf("Iter(%s, %v) = %q; encoding/json says %q", tt.data, tt.fields, got, ref)
			}
		})
	}
}

func TestIterUnterminated(t *testing.T) {
	_, err := walk(t, []byte(`{"a":"b\"}`), nil)
	if !errors.Is(err, jsonstr.ErrSyntax) {
		t.Errorf("Iter on an unterminated string: err = %v; want ErrSyntax", err)
	}
}

func TestIterAllocs(t *testing.T) {
	data := []byte(`{"user":"alice","text":"hello \u003cworld\u003e","tags":["a","b"],"n":1}`)
	allocs := testing.AllocsPerRun(100, func() {
		it := jsonstr.NewIter(data, []string{"text", "tags"})
		for it.Next() {
			_ = jsonstr.Equal(it.Raw(), "x")
		}
	})
	if allocs != 0 {
		t.Errorf("Iter allocates %v times per walk; want 0", allocs)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		raw, s string
		want   bool
	}{
		{`text`, "text", true},
		{`t\u0065xt`, "text", true},
		{`t\u0065xt`, "tex", false},
		{`t\u0065x`, "text", false},
		{`\ud83d\ude00`, "😀", true},
		{`a\"b`, `a"b`, true},
		{``, "", true},
	}
	for _, tt := range tests {
		if got := jsonstr.Equal([]byte(tt.raw), tt.s); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v; want %v", tt.raw, tt.s, got, tt.want)
		}
	}
}

func TestAppendQuote(t *testing.T) {
	tests := []struct{ text, want string }{
		{"plain", `"plain"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\n\r\t\x01\x1f", `"\n\r\t\u0001\u001f"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"bad\xffutf8", "\"bad\uFFFDutf8\""},
		{"é😀", `"é😀"`},
	}
	for _, tt := range tests {
		if got := string(jsonstr.AppendQuote(nil, []byte(tt.text))); got != tt.want {
			t.Errorf("AppendQuote(%q) = %s; want %s", tt.text, got, tt.want)
		}
	}
}

// FuzzIter checks Iter against encoding/json and that unquoting then
// quoting a string keeps its meaning.
func FuzzIter(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","c":["d",{"e":"f"}],"g":1}`,
		`["\u003c\"\\/\b\f\n\r\t\ud83d\ude00\ud800x"]`,
		`"top"`,
		`{"text":"x","t\u0065xt":"y"}`,
		"[\"\xff\"]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			walk(t, data, nil) // must not panic
			return
		}
		for _, fields := range [][]string{nil, {"text", "a"}} {
			got, err := walk(t, data, fields)
			if err != nil {
				t.Fatalf("Iter(%q) error %v on valid JSON", data, err)
			}
			if ref := reference(t, data, fields); !slices.Equal(got, ref) {
				t.Fatalf("Iter(%q, %v) = %q; encoding/json says %q", data, fields, got, ref)
			}
		}
		it := jsonstr.NewIter(data, nil)
		for it.Next() {
			text := jsonstr.AppendUnquote(nil, it.Raw())
			if !utf8.Valid(text) {
				t.Fatalf("AppendUnquote(%q) = %q: invalid UTF-8", it.Raw(), text)
			}
			if !jsonstr.Equal(it.Raw(), string(text)) {
				t.Fatalf("Equal(%q, %q) = false", it.Raw(), text)
			}
			q := jsonstr.AppendQuote(nil, text)
			var back string
			if err := json.Unmarshal(q, &back); err != nil || back != string(text) {
				t.Fatalf("AppendQuote(%q) = %s: decodes to %q, %v", text, q, back, err)
			}
		}
	})
}
