package nomarkup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/nomarkup"
)

func decode(t testing.TB, opts string) plugins.Filter {
	t.Helper()
	return filtertest.MustDecode(t, nomarkup.Modules(), "", "module: nomarkup\n"+opts)
}

func TestFilter(t *testing.T) {
	const escape, strip = "", "mode: strip"
	tests := []struct {
		name string
		opts string
		data string
		want string // "" when data must pass unchanged
	}{
		{"escape plain", escape, filtertest.Sample, ""},
		{"escape tags", escape, `{"text":"<b>hi</b>"}`, `{"text":"&lt;b&gt;hi&lt;/b&gt;"}`},
		{"escape all five", escape, `"<>&\"'"`, `"&lt;&gt;&amp;&quot;&#39;"`},
		{"escape JSON-escaped markup", escape, `{"t":"\u003cscript\u003e"}`, `{"t":"&lt;script&gt;"}`},
		{"escape upper-case hex", escape, `{"t":"\u003Cx"}`, `{"t":"&lt;x"}`},
		{"escape keeps keys", escape, `{"<k>":"v","a&b":1}`, ""},
		{"escape escaped backslash is no markup", escape, `{"t":"a\\b\/c\n"}`, ""},
		{"escape nested", escape, `{"a":[1,{"b":["x<y"]}],"c":true,"d":"ok"}`, `{"a":[1,{"b":["x&lt;y"]}],"c":true,"d":"ok"}`},
		{"escape keeps other bytes", escape, `{"a":"\u00e9\n","b":"<","c":"\u00e9"}`, `{"a":"\u00e9\n","b":"&lt;","c":"\u00e9"}`},
		{"escape re-encodes rewritten", escape, `{"a":"\u00e9\n\u2028\ud83d\ude00<"}`, `{"a":"é\n\u2028😀&lt;"}`},
		{"escape fields", "fields: [text]", `{"text":"<i>","nick":"<b>","x":{"text":"<u>"}}`, `{"text":"&lt;i&gt;","nick":"<b>","x":{"text":"<u>"}}`},
		{"escape fields nested", "fields: [msg]", `{"msg":{"a":["<i>"]},"other":"<b>"}`, `{"msg":{"a":["&lt;i&gt;"]},"other":"<b>"}`},
		{"escape fields on array", "fields: [text]", `["<b>"]`, ""},
		{"escape empty fields is all", "fields: []", `{"a":"<"}`, `{"a":"&lt;"}`},
		{"strip plain", strip, filtertest.Sample, ""},
		{"strip tags", strip, `{"text":"<b>bold</b> text"}`, `{"text":"bold text"}`},
		{"strip attributes", strip, `"a<img src=x onerror=alert(1)>b"`, `"ab"`},
		{"strip unclosed", strip, `"hi <img src=x onerror=alert(1)"`, `"hi "`},
		{"strip comment", strip, `"a<!-- x > y -->b"`, `"ab"`},
		{"strip doctype and pi", strip, `"<!doctype html><?xml?>x"`, `"x"`},
		{"strip stray brackets", strip, `"a < b > c"`, `"a &lt; b &gt; c"`},
		{"strip joins no tag", strip, `"<<b>b>"`, `"&lt;b&gt;"`},
		{"strip JSON-escaped tag", strip, `"\u003cscript\u003ealert(1)\u003c/script\u003e"`, `"alert(1)"`},
		{"strip leaves quotes and entities", strip, `"\"q\" &amp; 'a'"`, ""},
		{"strip keeps keys", strip, `{"<b>":"x"}`, ""},
		{"strip escapes in output", strip, `"<b>\"\\\n\u0001</b>"`, `"\"\\\n\u0001"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decode(t, tt.opts)
			m := filtertest.Message(tt.data)
			in := m.Data
			if err := f.Filter(context.Background(), m); err != nil {
				t.Fatalf("Filter(%s) error %v", tt.data, err)
			}
			if string(in) != tt.data {
				t.Fatalf("Filter(%s) wrote into its input: now %s", tt.data, in)
			}
			if tt.want == "" {
				if &m.Data[0] != &in[0] || len(m.Data) != len(in) {
					t.Errorf("Filter(%s) = %s; want the data unchanged", tt.data, m.Data)
				}
				return
			}
			if string(m.Data) != tt.want {
				t.Errorf("Filter(%s) = %s; want %s", tt.data, m.Data, tt.want)
			}
			if !json.Valid(m.Data) {
				t.Errorf("Filter(%s) = %s: invalid JSON", tt.data, m.Data)
			}
		})
	}
}

func TestPassAllocs(t *testing.T) {
	for _, opts := range []string{"", "mode: strip", "fields: [text, user]"} {
		f := decode(t, opts)
		m := filtertest.Message(filtertest.Sample)
		in := m.Data
		allocs := testing.AllocsPerRun(100, func() {
			if err := f.Filter(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Filter{%s} on data without markup: %v allocations; want 0", opts, allocs)
		}
		if &m.Data[0] != &in[0] {
			t.Errorf("Filter{%s} on data without markup replaced it", opts)
		}
	}
}

func TestBadData(t *testing.T) {
	f := decode(t, "")
	err := f.Filter(context.Background(), filtertest.Message(`{"a":"<unterminated`))
	if err == nil {
		t.Fatal("Filter on an unterminated string: nil error; want a failure")
	}
	if _, ok := plugins.AsRejection(err); ok {
		t.Errorf("Filter on bad data = rejection %v; want a failure", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts    string
		wantErr string // "" for none
	}{
		{"", ""},
		{"mode: escape\nfields: [a, b]", ""},
		{"mode: strip", ""},
		{"mode: html", `mode: "html": must be "escape" or "strip"`},
		{"fields: [a, '']", "fields[1]: must not be empty"},
		{"modes: strip", "field modes not found"},
		{"fields: text", "cannot unmarshal"},
	}
	for _, tt := range tests {
		_, err := filtertest.Decode(t, nomarkup.Modules(), "", "module: nomarkup\n"+tt.opts)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Decode(%q) error %v; want none", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Decode(%q) error %v; want one containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

// TestConcurrent runs one filter from many goroutines (strip mode shares
// a buffer pool).
func TestConcurrent(t *testing.T) {
	f := decode(t, "mode: strip")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				data := fmt.Sprintf(`{"t":"<b>%d</b>%s<i>"}`, g, strings.Repeat("x", i))
				want := fmt.Sprintf(`{"t":"%d%s"}`, g, strings.Repeat("x", i))
				m := filtertest.Message(data)
				if err := f.Filter(context.Background(), m); err != nil || string(m.Data) != want {
					t.Errorf("Filter(%s) = %s, %v; want %s", data, m.Data, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzFilter checks, for any valid data: the output is valid JSON and
// UTF-8 with the same shape and keys; escape mode leaves no markup
// character and unescaping gives the input back; strip mode leaves no
// angle bracket and is idempotent; fields limits the rewrite.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		filtertest.Sample,
		`{"text":"<b>hi</b> & \"q\" 'a'","n":[1,"<x>"],"<k>":null}`,
		`"\u003cscript\u003e\ud800\u2028"`,
		`["a<!-- x --> <<b>b> <img", "\\\"<"]`,
		`{"text":{"deep":["<i>"]},"other":"<b>"}`,
	} {
		f.Add([]byte(s))
	}
	escape := decode(f, "")
	strip := decode(f, "mode: strip")
	fields := decode(f, "fields: [text]")
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(flt plugins.Filter, data []byte) []byte {
			m := &plugins.Message{Data: data}
			err := flt.Filter(context.Background(), m)
			if err != nil {
				if json.Valid(data) {
					t.Fatalf("Filter(%q) error %v on valid JSON", data, err)
				}
				return nil
			}
			return m.Data
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			run(escape, data) // must not panic
			run(strip, data)
			return
		}
		in := unmarshal(t, data)

		out := run(escape, data)
		check(t, data, out)
		walk(t, in, unmarshal(t, out), func(a, b string) error {
			if strings.ContainsAny(b, `<>"'`) {
				return fmt.Errorf("markup left in %q", b)
			}
			if html.UnescapeString(b) != a {
				return fmt.Errorf("%q unescapes to %q, not %q", b, html.UnescapeString(b), a)
			}
			return nil
		})

		out = run(strip, data)
		check(t, data, out)
		walk(t, in, unmarshal(t, out), func(a, b string) error {
			if strings.ContainsAny(b, "<>") {
				return fmt.Errorf("angle bracket left in %q", b)
			}
			return nil
		})
		if again := run(strip, out); !bytes.Equal(again, out) || &again[0] != &out[0] {
			t.Fatalf("strip is not idempotent: %s then %s", out, again)
		}

		out = run(fields, data)
		check(t, data, out)
		if obj, ok := in.(map[string]any); ok {
			outObj := unmarshal(t, out).(map[string]any)
			for k, v := range obj {
				if k != "text" && !reflect.DeepEqual(v, outObj[k]) {
					t.Fatalf("fields [text] changed %q: %v to %v", k, v, outObj[k])
				}
			}
		} else if &out[0] != &data[0] {
			t.Fatalf("fields [text] changed data that is not an object: %s to %s", data, out)
		}
	})
}

func unmarshal(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	return v
}

// check fails unless out is valid JSON and UTF-8, and is data itself when
// equal to it.
func check(t *testing.T, data, out []byte) {
	t.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("Filter(%q) = %q: invalid JSON or UTF-8", data, out)
	}
	if bytes.Equal(out, data) && &out[0] != &data[0] {
		t.Fatalf("Filter(%q) copied data without changing it", data)
	}
}

// walk compares two decoded values of the same shape, strings by fn.
func walk(t *testing.T, a, b any, fn func(a, b string) error) {
	t.Helper()
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(bm) != len(a) {
			t.Fatalf("object %v became %v", a, b)
		}
		for k, v := range a {
			bv, ok := bm[k]
			if !ok {
				t.Fatalf("key %q lost: %v", k, b)
			}
			walk(t, v, bv, fn)
		}
	case []any:
		bs, ok := b.([]any)
		if !ok || len(bs) != len(a) {
			t.Fatalf("array %v became %v", a, b)
		}
		for i := range a {
			walk(t, a[i], bs[i], fn)
		}
	case string:
		bs, ok := b.(string)
		if !ok {
			t.Fatalf("string %q became %v", a, b)
		}
		if err := fn(a, bs); err != nil {
			t.Fatal(err)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%v became %v", a, b)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	markup := strings.Replace(filtertest.Sample, "room 4", "<b>room 4</b>", 1)
	for _, bc := range []struct{ name, opts, data string }{
		{"Pass", "", filtertest.Sample},
		{"Escape", "", markup},
		{"StripPass", "mode: strip", filtertest.Sample},
		{"Strip", "mode: strip", markup},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := decode(b, bc.opts)
			data := []byte(bc.data)
			m := &plugins.Message{}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				m.Data = data
				if err := f.Filter(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
