package nomarkup

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/jsonstr"
)

// Modules returns the package's modules for a plugins.Registry.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "nomarkup",
		New:  func() any { return new(Filter) },
		Doc:  "escape or strip HTML markup in the string values of data",
	}}
}

// Filter is the nomarkup module. Its exported fields are its options;
// after Provision it is safe for concurrent use.
type Filter struct {
	// Mode is "escape" (HTML entities for < > & " ') or "strip" (remove
	// tags). Default "escape".
	Mode string `yaml:"mode"`
	// Fields, if not empty, limits the filter to these top-level fields of
	// a data object. Default: every string value of data.
	Fields []string `yaml:"fields"`

	strip  bool       // Mode is "strip"
	fields []string   // Fields, nil for all
	hits   *[256]bool // bytes that may need a rewrite
}

// Interface guards.
var (
	_ plugins.Filter      = (*Filter)(nil)
	_ plugins.Provisioner = (*Filter)(nil)
	_ plugins.Validator   = (*Filter)(nil)
)

// Modes.
const (
	modeEscape = "escape"
	modeStrip  = "strip"
)

// escapeHits and stripHits mark the bytes worth a closer look in each
// mode: the markup characters themselves, and the backslash that may
// start an escaped one (\u003c, \").
var escapeHits, stripHits = func() (e, s [256]bool) {
	for _, c := range `<>&"'\` {
		e[c] = true
	}
	for _, c := range `<>\` {
		s[c] = true
	}
	return
}()

// plain marks the bytes that stand for themselves in JSON string content
// and in HTML text: printable ASCII but for " \ < > & '.
var plain = func() (p [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		p[c] = !strings.ContainsRune(`"\<>&'`, rune(c))
	}
	return
}()

// Provision applies the defaults.
func (f *Filter) Provision(*plugins.Context) error {
	if f.Mode == "" {
		f.Mode = modeEscape
	}
	f.strip = f.Mode == modeStrip
	f.hits = &escapeHits
	if f.strip {
		f.hits = &stripHits
	}
	if len(f.Fields) > 0 {
		f.fields = f.Fields
	}
	return nil
}

// Validate checks the options.
func (f *Filter) Validate() error {
	if f.Mode != modeEscape && f.Mode != modeStrip {
		return fmt.Errorf("mode: %q: must be %q or %q", f.Mode, modeEscape, modeStrip)
	}
	for i, name := range f.Fields {
		if name == "" {
			return fmt.Errorf("fields[%d]: must not be empty", i)
		}
	}
	return nil
}

// Filter rewrites m.Data's string values that hold markup; it never
// rejects. It returns an error only for data that is not JSON.
func (f *Filter) Filter(_ context.Context, m *plugins.Message) error {
	data := m.Data
	var out []byte // the rewritten data, made at the first rewrite
	last := 0      // data[:last] is in out
	it := jsonstr.NewIter(data, f.fields)
	for it.Next() {
		raw := it.Raw()
		if !f.markup(raw) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(data)+len(data)/4+16)
		}
		out = append(out, data[last:it.Start()]...)
		if f.strip {
			out = appendStripped(out, raw)
		} else {
			out = appendEscaped(out, raw)
		}
		last = it.End()
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("nomarkup: %w", err)
	}
	if out != nil {
		m.Data = append(out, data[last:]...)
	}
	return nil
}

// markup reports whether the JSON string content raw decodes to text
// this filter's mode changes.
func (f *Filter) markup(raw []byte) bool {
	hits := f.hits
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !hits[c] {
			continue
		}
		if c != '\\' {
			return true
		}
		r, n := jsonstr.DecodeRune(raw[i:])
		if r < 0x80 && r != '\\' && hits[r] {
			return true
		}
		i += n - 1
	}
	return false
}

// appendEscaped appends raw's text, markup characters escaped, to dst as
// a JSON string.
func appendEscaped(dst, raw []byte) []byte {
	dst = append(dst, '"')
	for len(raw) > 0 {
		n := 0
		for n < len(raw) && plain[raw[n]] {
			n++
		}
		dst = append(dst, raw[:n]...)
		if raw = raw[n:]; len(raw) == 0 {
			break
		}
		r, n := jsonstr.DecodeRune(raw)
		raw = raw[n:]
		switch r {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&#39;"...)
		default:
			dst = jsonstr.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}

// textPool holds buffers for decoded strings in strip mode.
var textPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendStripped appends raw's text, tags removed and other angle
// brackets escaped, to dst as a JSON string.
func appendStripped(dst, raw []byte) []byte {
	bp := textPool.Get().(*[]byte)
	text := jsonstr.AppendUnquote((*bp)[:0], raw)
	dst = append(dst, '"')
	for i := 0; i < len(text); {
		// copy the text up to the next angle bracket
		j := i
		for j < len(text) && text[j] != '<' && text[j] != '>' {
			j++
		}
		dst = jsonstr.AppendText(dst, text[i:j])
		if j == len(text) {
			break
		}
		if text[j] == '>' {
			dst = append(dst, "&gt;"...)
			i = j + 1
			continue
		}
		if j+1 < len(text) && tagStart(text[j+1]) {
			i = tagEnd(text, j)
			continue
		}
		dst = append(dst, "&lt;"...)
		i = j + 1
	}
	if cap(text) <= 64<<10 { // do not keep huge buffers
		*bp = text
		textPool.Put(bp)
	}
	return append(dst, '"')
}

// tagStart reports whether c after a < starts a tag, as in HTML's
// tokenizer: a letter (start tag), / (end tag), ! (comment, doctype) or
// ? (processing instruction).
func tagStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '/' || c == '!' || c == '?'
}

// tagEnd returns the offset just past the tag starting at text[i] ('<'):
// past "-->" for a comment, past the next '>' otherwise, or the end of
// text for a tag never closed.
func tagEnd(text []byte, i int) int {
	from, closer := i+1, ">"
	if bytes.HasPrefix(text[i:], []byte("<!--")) {
		from, closer = i+4, "-->"
	}
	if k := bytes.Index(text[from:], []byte(closer)); k >= 0 {
		return from + k + len(closer)
	}
	return len(text)
}
