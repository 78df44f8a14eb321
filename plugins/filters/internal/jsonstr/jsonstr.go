// Package jsonstr walks the string values of a JSON document and decodes
// and encodes JSON strings without allocating, for the filters that
// rewrite strings in a message's data (nomarkup, regex).
//
// The walker trusts its input to be valid JSON (the gateway validates data
// before filters see it): it finds strings, brackets and keys, and reports
// only an unterminated string. On valid JSON, replacing any string values
// by other valid JSON strings gives valid JSON.
package jsonstr

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is returned by Iter.Err for a document with an unterminated
// string.
var ErrSyntax = errors.New("jsonstr: unterminated string")

// Iter walks the string values (not the object keys) of a JSON document,
// in document order. With fields, only the values under those top-level
// keys of a top-level object are walked (at any depth below them); a
// document that is not an object then has none. The zero Iter walks
// nothing; make one with NewIter. An Iter is not safe for concurrent use
// and does not allocate.
type Iter struct {
	data   []byte
	fields []string
	pos    int  // where the next scan starts
	depth  int  // brackets open at pos
	sel    bool // the current top-level field is walked
	start  int  // the current string's opening quote
	end    int  // just past the current string's closing quote
	err    error
}

// NewIter returns an Iter over data's string values, limited to the
// top-level fields named in fields unless fields is nil.
func NewIter(data []byte, fields []string) Iter {
	return Iter{data: data, fields: fields, sel: fields == nil}
}

// Next moves to the next string value; it returns false at the end of the
// document or on a syntax error (see Err).
func (it *Iter) Next() bool {
	d := it.data
	for i := it.pos; i < len(d); i++ {
		switch d[i] {
		case '{', '[':
			it.depth++
		case '}', ']':
			it.depth--
		case '"':
			end := stringEnd(d, i+1)
			if end < 0 {
				it.err = ErrSyntax
				it.pos = len(d)
				return false
			}
			if isKey(d, end) {
				if it.fields != nil && it.depth == 1 {
					it.sel = it.selected(d[i+1 : end-1])
				}
				i = end - 1
				continue
			}
			if !it.sel {
				i = end - 1
				continue
			}
			it.start, it.end, it.pos = i, end, end
			return true
		}
	}
	it.pos = len(d)
	return false
}

// Raw returns the current string's content as written: between the
// quotes, escapes undecoded. It aliases the document.
func (it *Iter) Raw() []byte { return it.data[it.start+1 : it.end-1] }

// Start returns the offset of the current string's opening quote.
func (it *Iter) Start() int { return it.start }

// End returns the offset just past the current string's closing quote.
func (it *Iter) End() int { return it.end }

// Err returns the syntax error that ended the walk, if any.
func (it *Iter) Err() error { return it.err }

func (it *Iter) selected(key []byte) bool {
	for _, f := range it.fields {
		if Equal(key, f) {
			return true
		}
	}
	return false
}

// stringEnd returns the offset just past the closing quote of the string
// whose content starts at i, or -1 if it has none.
func stringEnd(d []byte, i int) int {
	// Most strings are short: a plain loop beats IndexByte's set-up.
	for stop := min(i+16, len(d)); i < stop; i++ {
		switch d[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
	for i < len(d) {
		q := bytes.IndexByte(d[i:], '"')
		if q < 0 {
			return -1
		}
		q += i
		n := 0 // backslashes right before the quote
		for k := q - 1; k >= i && d[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
	return -1
}

// isKey reports whether the string ending at end is an object key: the
// next character other than white space is a colon.
func isKey(d []byte, end int) bool {
	for ; end < len(d); end++ {
		switch d[end] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// Equal reports whether the JSON string content raw (escapes as written)
// decodes to s.
func Equal(raw []byte, s string) bool {
	if bytes.IndexByte(raw, '\\') < 0 && (string(raw) == s || utf8.Valid(raw)) {
		return string(raw) == s
	}
	var buf [utf8.UTFMax]byte
	for len(raw) > 0 {
		r, n := DecodeRune(raw)
		raw = raw[n:]
		w := utf8.EncodeRune(buf[:], r)
		if len(s) < w || s[:w] != string(buf[:w]) {
			return false
		}
		s = s[w:]
	}
	return s == ""
}

// DecodeRune decodes the first character of raw, JSON string content with
// escapes as written, and returns it with the number of bytes of raw it
// took. Like encoding/json, it decodes invalid UTF-8 and a lone surrogate
// as utf8.RuneError; an invalid escape (not in valid JSON) also decodes so.
// raw must not be empty.
func DecodeRune(raw []byte) (rune, int) {
	c := raw[0]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), 1
		}
		return utf8.DecodeRune(raw)
	}
	if len(raw) < 2 {
		return utf8.RuneError, 1
	}
	switch raw[1] {
	case '"', '\\', '/':
		return rune(raw[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, ok := hex4(raw[2:])
		if !ok {
			return utf8.RuneError, 2
		}
		if !utf16.IsSurrogate(r) {
			return r, 6
		}
		if len(raw) >= 12 && raw[6] == '\\' && raw[7] == 'u' {
			if r2, ok := hex4(raw[8:]); ok {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return d, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return utf8.RuneError, 2
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// AppendUnquote appends the decoded text of raw, JSON string content with
// escapes as written, to dst.
func AppendUnquote(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return appendValid(dst, raw)
		}
		dst = appendValid(dst, raw[:i])
		r, n := DecodeRune(raw[i:])
		dst = utf8.AppendRune(dst, r)
		raw = raw[i+n:]
	}
	return dst
}

// appendValid appends text to dst with invalid UTF-8 replaced by U+FFFD.
func appendValid(dst, text []byte) []byte {
	if utf8.Valid(text) {
		return append(dst, text...)
	}
	for len(text) > 0 {
		r, n := utf8.DecodeRune(text)
		dst = utf8.AppendRune(dst, r)
		text = text[n:]
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendRune appends r to dst as JSON string content: quote, backslash and
// control characters escaped, U+2028 and U+2029 escaped (as encoding/json
// does, for JavaScript), invalid runes as U+FFFD, the rest as UTF-8.
func AppendRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\u2028', '\u2029':
		return append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	if r < utf8.RuneSelf {
		return append(dst, byte(r))
	}
	return utf8.AppendRune(dst, r) // invalid runes become U+FFFD
}

// AppendText appends UTF-8 text to dst as JSON string content (without
// quotes), as AppendRune does each character.
func AppendText(dst, text []byte) []byte {
	for len(text) > 0 {
		c := text[0]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			// a run of plain ASCII
			n := 1
			for n < len(text) && text[n] >= 0x20 && text[n] < utf8.RuneSelf && text[n] != '"' && text[n] != '\\' {
				n++
			}
			dst = append(dst, text[:n]...)
			text = text[n:]
			continue
		}
		r, n := utf8.DecodeRune(text)
		dst = AppendRune(dst, r)
		text = text[n:]
	}
	return dst
}

// AppendQuote appends UTF-8 text to dst as a JSON string, quotes included.
func AppendQuote(dst, text []byte) []byte {
	dst = append(dst, '"')
	dst = AppendText(dst, text)
	return append(dst, '"')
}
