package regex_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/regex"
)

func decode(t testing.TB, opts string) plugins.Filter {
	t.Helper()
	return filtertest.MustDecode(t, regex.Modules(), "", "module: regex\n"+opts)
}

const (
	wordsReplace = `
rules:
  - words: [bad, "worse", Scheiße, блин, "two words", "c++", kelvin]
    action: replace`
	wordsReject = `
rules:
  - words: [bad]
    reason: "no bad words"`
	patterns = `
rules:
  - pattern: '(\d{3})-(\d{4})'
    action: replace
    replacement: "$1-xxxx"
  - pattern: '(?i)https?://'
    reason: no_links
  - pattern: 'secret'
    action: replace
    replacement: ""`
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name       string
		opts, data string
		want       string // "" when data must pass unchanged
		wantReject string // the rejection, "" for none
	}{
		{"words pass", wordsReplace, filtertest.Sample, "", ""},
		{"words replace", wordsReplace, `{"t":"a bad day","n":"BAD"}`, `{"t":"a *** day","n":"***"}`, ""},
		{"words whole only", wordsReplace, `{"t":"badge abad bad_ bad1 _bad"}`, "", ""},
		{"words punctuation bounds", wordsReplace, `{"t":"(bad), 'worse'! bad-bad"}`, `{"t":"(***), '***'! ***-***"}`, ""},
		{"words adjacent", wordsReplace, `"bad bad bad"`, `"*** *** ***"`, ""},
		{"words non-ASCII", wordsReplace, `"scheiße! БЛИН, блинчик"`, `"***! ***, блинчик"`, ""},
		{"words combining mark", wordsReplace, "\"bad\u0301 bad\"", "\"bad\u0301 ***\"", ""},
		{"words simple folding", wordsReplace, "\"\u212aelvin ſcheiße\"", `"*** ***"`, ""},
		{"words ending in punctuation", wordsReplace, `"c++, C++x c"`, `"***, C++x c"`, ""},
		{"words phrase", wordsReplace, `"two  words, two words"`, `"two  words, ***"`, ""},
		{"words escaped in JSON", wordsReplace, `{"t":"\u0062ad\n"}`, `{"t":"***\n"}`, ""},
		{"words keys untouched", wordsReplace, `{"bad":1,"x":["bad"]}`, `{"bad":1,"x":["***"]}`, ""},
		{"words reject", wordsReject, `{"a":{"b":["so BAD"]}}`, "", "403::no bad words"},
		{"words reject whole only", wordsReject, `{"a":"badminton"}`, "", ""},
		{"pattern pass", patterns, filtertest.Sample, "", ""},
		{"pattern replace groups", patterns, `{"phone":"call 555-1234 now"}`, `{"phone":"call 555-xxxx now"}`, ""},
		{"pattern reject", patterns, `{"t":"see HTTP://x.test"}`, "", "403::no_links"},
		{"pattern delete", patterns, `"a secret b"`, `"a  b"`, ""},
		{"rules in order", patterns, `"555-1234 secret"`, `"555-xxxx "`, ""},
		{"fields", "fields: [text]\n" + wordsReplace, `{"text":"bad","nick":"bad"}`, `{"text":"***","nick":"bad"}`, ""},
		{"fields reject elsewhere passes", "fields: [text]\n" + wordsReject, `{"text":"ok","nick":"bad"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decode(t, tt.opts)
			m := filtertest.Message(tt.data)
			in := m.Data
			err := f.Filter(context.Background(), m)
			if string(in) != tt.data {
				t.Fatalf("Filter(%s) wrote into its input: now %s", tt.data, in)
			}
			if tt.wantReject != "" {
				r, ok := plugins.AsRejection(err)
				if !ok || r.Error() != tt.wantReject {
					t.Fatalf("Filter(%s) = %v; want rejection %s", tt.data, err, tt.wantReject)
				}
				return
			}
			if err != nil {
				t.Fatalf("Filter(%s) error %v", tt.data, err)
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
		})
	}
}

func TestPassAllocs(t *testing.T) {
	for _, opts := range []string{wordsReplace, wordsReject, patterns} {
		f := decode(t, opts)
		for _, data := range []string{filtertest.Sample, `{"t":"escaped \u00e9\n text","n":[1,2]}`} {
			m := filtertest.Message(data)
			in := m.Data
			allocs := testing.AllocsPerRun(100, func() {
				if err := f.Filter(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 && !filtertest.RaceEnabled {
				t.Errorf("Filter{%s}(%s) without a match: %v allocations; want 0", opts, data, allocs)
			}
			if &m.Data[0] != &in[0] {
				t.Errorf("Filter{%s}(%s) without a match replaced data", opts, data)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts    string
		wantErr string // "" for none
	}{
		{wordsReplace, ""},
		{patterns, ""},
		{"rules: [{words: [a], action: replace, replacement: ''}]", ""},
		{"", "rules: at least one rule is required"},
		{"rules: [{action: reject}]", "rules[0]: a pattern or words is required"},
		{"rules: [{pattern: a, words: [b]}]", "rules[0]: pattern and words: only one is allowed"},
		{"rules: [{pattern: a, action: drop}]", `rules[0].action: "drop": must be "reject" or "replace"`},
		{"rules: [{pattern: a, replacement: x}]", `rules[0].replacement: only for action "replace"`},
		{"rules: [{pattern: a, action: replace, reason: x}]", `rules[0].reason: only for action "reject"`},
		{"rules: [{pattern: a, reason: ':,'}]", `rules[0].reason: ":,": must have printable characters`},
		{"rules: [{words: [a, ' ']}]", "rules[0].words[1]: must not be empty"},
		{"rules: [{pattern: a}, {pattern: '(a'}]", "rules[1].pattern: error parsing regexp: missing closing )"},
		{"rules: [{words: [ok, '@home']}]", `rules[0].words[1]: "@home": must start with a letter, digit or underscore`},
		{"rules: [{pattern: a}]\nfields: ['']", "fields[0]: must not be empty"},
		{"rules: [{pattern: a, replace: x}]", "field replace not found"},
		{"rule: [{pattern: a}]", "field rule not found"},
	}
	for _, tt := range tests {
		_, err := filtertest.Decode(t, regex.Modules(), "", "module: regex\n"+tt.opts)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Decode(%q) error %v; want none", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Decode(%q) error %v; want one containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

// TestConcurrent runs one filter from many goroutines (compiled
// expressions and the decoding buffers are shared).
func TestConcurrent(t *testing.T) {
	f := decode(t, wordsReplace)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				data := fmt.Sprintf(`{"t":"\u0062ad %d %s worse"}`, g, strings.Repeat("x", i))
				want := fmt.Sprintf(`{"t":"*** %d %s ***"}`, g, strings.Repeat("x", i))
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

// words splits s into maximal runs of word characters, as the filter
// defines them, independently of its code.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || r == '_')
	})
}

func hasWord(s string, list ...string) bool {
	for _, w := range words(s) {
		for _, l := range list {
			if strings.EqualFold(w, l) {
				return true
			}
		}
	}
	return false
}

// FuzzFilter checks, for any valid data (the digits rule comes first: a
// later rule may make a whole word of what an earlier one left, as
// "bad000" becomes "bad#"): a message is rejected exactly
// when a string value holds the forbidden word; otherwise the output is
// valid JSON and UTF-8 of the same shape, holds no replaced word or digit
// run, is idempotent, and strings without a match are left alone.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		filtertest.Sample,
		`{"t":"a bad day, WORSE 12345","n":[1,"forbidden"],"bad":null}`,
		`"\u0062ad\ud800\u2028 schlecht"`,
		`["badbad bad_bad bad-bad", "\\\"bad"]`,
	} {
		f.Add([]byte(s))
	}
	flt := decode(f, `
rules:
  - pattern: '[0-9]{3,}'
    action: replace
    replacement: "#"
  - words: [bad, worse, schlecht]
    action: replace
  - words: [forbidden]
    reason: nope`)
	digits := regexp.MustCompile(`[0-9]{3,}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(data []byte) ([]byte, error) {
			m := &plugins.Message{Data: data}
			err := flt.Filter(context.Background(), m)
			return m.Data, err
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			run(data) // must not panic
			return
		}
		in := unmarshal(t, data)
		forbidden := false
		eachString(in, func(s string) {
			forbidden = forbidden || hasWord(s, "forbidden")
		})
		out, err := run(data)
		if forbidden {
			if r, ok := plugins.AsRejection(err); !ok || r.Error() != "403::nope" {
				t.Fatalf("Filter(%s) = %v; want 403::nope", data, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Filter(%s) error %v", data, err)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("Filter(%q) = %q: invalid JSON or UTF-8", data, out)
		}
		compare(t, in, unmarshal(t, out), func(a, b string) {
			if hasWord(b, "bad", "worse", "schlecht") || digits.MatchString(b) {
				t.Fatalf("Filter left a match in %q (from %q)", b, a)
			}
			if !hasWord(a, "bad", "worse", "schlecht") && !digits.MatchString(a) && a != b {
				t.Fatalf("Filter changed %q, without a match, to %q", a, b)
			}
		})
		again, err := run(out)
		if err != nil || &again[0] != &out[0] {
			t.Fatalf("Filter is not idempotent: %s then %s, %v", out, again, err)
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

func eachString(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			eachString(e, fn)
		}
	case []any:
		for _, e := range v {
			eachString(e, fn)
		}
	case string:
		fn(v)
	}
}

// compare checks two decoded values have the same shape, keys and
// non-string values, and compares strings with fn.
func compare(t *testing.T, a, b any, fn func(a, b string)) {
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
			compare(t, v, bv, fn)
		}
	case []any:
		bs, ok := b.([]any)
		if !ok || len(bs) != len(a) {
			t.Fatalf("array %v became %v", a, b)
		}
		for i := range a {
			compare(t, a[i], bs[i], fn)
		}
	case string:
		bs, ok := b.(string)
		if !ok {
			t.Fatalf("string %q became %v", a, b)
		}
		fn(a, bs)
	default:
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%v became %v", a, b)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	list := "rules:\n  - words: [" + strings.Join(benchWords(100), ", ") + "]\n    action: replace"
	rejectList := "rules:\n  - words: [" + strings.Join(benchWords(100), ", ") + "]"
	bad := strings.Replace(filtertest.Sample, "slides", "w42", 1)
	for _, bc := range []struct{ name, opts, data string }{
		{"Words1/Pass", wordsReplace, filtertest.Sample},
		{"Words1/Replace", wordsReplace, strings.Replace(filtertest.Sample, "slides", "bad", 1)},
		{"Words100/Pass", list, filtertest.Sample},
		{"Words100/Replace", list, bad},
		{"Words100/Reject", rejectList, bad},
		{"Pattern/Pass", patterns, filtertest.Sample},
		{"Pattern/Replace", patterns, strings.Replace(filtertest.Sample, "room 4", "555-1234", 1)},
		{"Pattern/Reject", patterns, strings.Replace(filtertest.Sample, "slides", "http://x", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := decode(b, bc.opts)
			data := []byte(bc.data)
			m := &plugins.Message{}
			ctx := context.Background()
			m.Data = data
			err := f.Filter(ctx, m)
			if _, ok := plugins.AsRejection(err); ok != strings.HasSuffix(bc.name, "Reject") || !ok && err != nil {
				b.Fatalf("Filter(%s) = %v", data, err)
			}
			if pass := &m.Data[0] == &data[0]; pass != strings.HasSuffix(bc.name, "Pass") && err == nil {
				b.Fatalf("Filter(%s) = %s: wrong case", data, m.Data)
			}
			b.ReportAllocs()
			for b.Loop() {
				m.Data = data
				f.Filter(ctx, m)
			}
		})
	}
}

// benchWords returns n words of a word list, made up: w0 ... w(n-1) with
// varied prefixes.
func benchWords(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%c%cw%d", 'a'+i%26, 'a'+i/26%26, i)
	}
	out[n/2] = "w42"
	return out
}
