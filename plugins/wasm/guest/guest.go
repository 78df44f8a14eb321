// Package guest is the SDK for writing Cometgate WebAssembly filters in
// ordinary Go. A filter is a main package that registers its handler in
// an init function and has an empty main:
//
//	package main
//
//	import "github.com/cometgate/cometgate/plugins/wasm/guest"
//
//	func init() {
//		guest.Handle(func(m *guest.Message) guest.Verdict {
//			if m.Channel == "/chat/closed" {
//				return guest.Reject(403, "closed")
//			}
//			return guest.Pass()
//		})
//	}
//
//	func main() {}
//
// built with the standard toolchain (Go 1.24 or later):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .
//
// The package implements the guest side of the ABI described in
// plugins/wasm/ABI.md: it exports cometgate_alloc, cometgate_filter and
// cometgate_init (with //go:wasmexport, in a file built only for wasip1),
// parses the message the host writes into the guest's memory, and encodes
// the verdict the host reads back. On other platforms the package builds
// too, so that a handler can be tested natively with Run.
//
// The SDK depends on nothing but the standard library and does not use
// encoding/json on the message path: the message envelope is parsed by a
// small scanner, and Data and Ext are handed over as raw JSON. A handler
// may decode them with encoding/json, which costs (in the guest, compiled
// by wazero) several microseconds for a 200-byte object; scanning the raw
// bytes is much cheaper.
//
// A guest runs one call at a time: the host never calls an instance
// concurrently, so handlers need no locking. A handler must not start
// goroutines that outlive the call, nor block (the Go runtime in a
// wasmexport call cannot wait), nor keep Data, Ext or the verdict's
// slices after it returns: they live in buffers the next call reuses.
package guest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Message is one message as the filter sees it. Its strings and slices
// point into the host's input buffer, which the next message overwrites:
// they are valid until the handler returns. To keep one, copy it
// (strings.Clone, bytes.Clone, or Clone for the whole message); a string
// used as a map key must be cloned first. Never modify Data or Ext.
// (Copying every message would cost an allocation per call and, in time,
// a garbage collection, which in a guest is slow.)
type Message struct {
	Channel string
	ID      string // "" if the message has none
	// Data is the message's data, raw JSON; Ext its ext object, raw JSON,
	// or nil.
	Data []byte
	Ext  []byte
	// Direction is "inbound" (once per publish, before fan-out) or
	// "outbound" (once per delivery to one session).
	Direction string
	// Source is where an inbound message came from: "client", "api",
	// "backend" or "broker".
	Source string
	// Client is the publisher (inbound) or the recipient (outbound); its
	// fields are "" for the server itself.
	Client Client
}

// Clone returns a copy of m that stays valid after the handler returns.
func (m *Message) Clone() *Message {
	c := &Message{
		Channel:   strings.Clone(m.Channel),
		ID:        strings.Clone(m.ID),
		Data:      bytes.Clone(m.Data),
		Ext:       bytes.Clone(m.Ext),
		Direction: m.Direction,
		Source:    m.Source,
		Client: Client{
			ID:        strings.Clone(m.Client.ID),
			User:      strings.Clone(m.Client.User),
			Transport: strings.Clone(m.Client.Transport),
		},
	}
	return c
}

// Client describes a session.
type Client struct {
	ID        string
	User      string
	Transport string
}

// Verdict is what a handler decides. Build one with Pass, Rewrite or
// Reject.
type Verdict struct {
	kind      byte
	data, ext []byte
	setData   bool
	setExt    bool
	code      int
	reason    string
}

// Verdict kinds, the first byte of a verdict record (see ABI.md).
const (
	KindPass    = 0
	KindRewrite = 1
	KindReject  = 2
	KindFail    = 3
)

// Flags of a rewrite record.
const (
	FlagData = 1 // the record carries new data
	FlagExt  = 2 // the record carries a new ext
)

// HeaderSize is the size of a verdict record's header.
const HeaderSize = 12

// Pass lets the message through unchanged.
func Pass() Verdict { return Verdict{} }

// Rewrite lets the message through with new data and/or ext, each raw
// JSON; a nil slice leaves that part unchanged. Data must be valid JSON
// and ext a JSON object or empty (the gateway checks, and counts anything
// else as a failure of the filter). The slices may be reused by the
// handler after the call returns.
func Rewrite(data, ext []byte) Verdict {
	if data == nil && ext == nil {
		return Pass()
	}
	return Verdict{kind: KindRewrite, data: data, ext: ext, setData: data != nil, setExt: ext != nil}
}

// Reject refuses the message with a Bayeux error code (403 when 0; 400 to
// 599) and a short reason, which reaches the publisher as "code::reason".
func Reject(code int, reason string) Verdict {
	return Verdict{kind: KindReject, code: code, reason: reason}
}

// Fail reports that the filter could not decide (a failure, not a
// rejection): the gateway logs reason, counts the failure and refuses the
// message with 500::filter_failed.
func Fail(reason string) Verdict {
	return Verdict{kind: KindFail, reason: reason}
}

// IsPass, IsRewrite, IsReject and IsFail tell a verdict's kind, for tests.
func (v Verdict) IsPass() bool    { return v.kind == KindPass }
func (v Verdict) IsRewrite() bool { return v.kind == KindRewrite }
func (v Verdict) IsReject() bool  { return v.kind == KindReject }
func (v Verdict) IsFail() bool    { return v.kind == KindFail }

// Data and Ext return a rewrite's new data and ext (nil when unchanged).
func (v Verdict) Data() []byte { return v.data }
func (v Verdict) Ext() []byte  { return v.ext }

// Code returns a rejection's code; Reason a rejection's or a failure's
// reason.
func (v Verdict) Code() int      { return v.code }
func (v Verdict) Reason() string { return v.reason }

// Handler decides on one message.
type Handler func(m *Message) Verdict

// ConfigHandler receives the filter's "config" option once per instance,
// as JSON ("null" when the option is absent), before any message. An
// error refuses the configuration: the gateway fails to load it (or keeps
// the previous module on a file change) and logs the error's text.
type ConfigHandler func(config []byte) error

// registered handlers; set once from init functions, before the host's
// first call.
var (
	handler   Handler
	configure ConfigHandler
)

// Handle sets the filter's handler. Call it from an init function.
func Handle(h Handler) { handler = h }

// Configure sets the handler of the "config" option. Call it from an init
// function; without one, the option is ignored.
func Configure(c ConfigHandler) { configure = c }

// Run parses one message in the host's encoding (see ABI.md) and runs the
// handler on it, as the host's call does; for testing handlers natively.
func Run(msg []byte) (Verdict, error) {
	var m Message
	if err := ParseMessage(msg, &m); err != nil {
		return Verdict{}, err
	}
	if handler == nil {
		return Pass(), nil
	}
	return handler(&m), nil
}

// AppendRecord appends v's verdict record (see ABI.md) to buf.
func (v Verdict) AppendRecord(buf []byte) []byte {
	var h [HeaderSize]byte
	switch v.kind {
	case KindRewrite:
		h[0] = KindRewrite
		if v.setData {
			h[1] |= FlagData
		}
		if v.setExt {
			h[1] |= FlagExt
		}
		binary.LittleEndian.PutUint32(h[4:], uint32(len(v.data)))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(v.ext)))
		buf = append(buf, h[:]...)
		buf = append(buf, v.data...)
		return append(buf, v.ext...)
	case KindReject, KindFail:
		h[0] = v.kind
		code := v.code
		if code < 0 || code > 0xffff {
			code = 500
		}
		binary.LittleEndian.PutUint16(h[2:], uint16(code))
		binary.LittleEndian.PutUint32(h[4:], uint32(len(v.reason)))
		buf = append(buf, h[:]...)
		return append(buf, v.reason...)
	}
	return append(buf, h[:]...)
}

var errSyntax = errors.New("guest: malformed message")

// ParseMessage parses the host's message JSON into m. Data and Ext point
// into msg; the strings are copies.
func ParseMessage(msg []byte, m *Message) error {
	*m = Message{}
	p := parser{b: msg}
	return p.object(func(key []byte) error {
		switch string(key) {
		case "channel":
			s, err := p.str()
			m.Channel = s
			return err
		case "id":
			s, err := p.str()
			m.ID = s
			return err
		case "direction":
			s, err := p.str()
			m.Direction = s
			return err
		case "source":
			s, err := p.str()
			m.Source = s
			return err
		case "data":
			raw, err := p.raw()
			m.Data = raw
			return err
		case "ext":
			raw, err := p.raw()
			if string(raw) != "null" {
				m.Ext = raw
			}
			return err
		case "client":
			return p.object(func(key []byte) error {
				switch string(key) {
				case "id":
					s, err := p.str()
					m.Client.ID = s
					return err
				case "user":
					s, err := p.str()
					m.Client.User = s
					return err
				case "transport":
					s, err := p.str()
					m.Client.Transport = s
					return err
				}
				_, err := p.raw()
				return err
			})
		}
		_, err := p.raw()
		return err
	})
}

// parser is a small JSON scanner for the host's message envelope: it
// reads objects and strings and skips (or returns raw) any other value.
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object reads an object, calling field for each key with the parser
// positioned at its value.
func (p *parser) object(field func(key []byte) error) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return errSyntax
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		key, err := p.strBytes()
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return errSyntax
		}
		p.i++
		if err := field(key); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// str reads a string value (null reads as "").
func (p *parser) str() (string, error) {
	p.ws()
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return "", nil
	}
	b, err := p.strBytes()
	return string(b), err
}

// strBytes reads a string, unescaped. Without escapes the result points
// into the input.
func (p *parser) strBytes() ([]byte, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, errSyntax
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			return nil, errSyntax
		}
		p.i++
	}
	return nil, errSyntax
}

func (p *parser) unescape(start int) ([]byte, error) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return out, nil
		case c < 0x20:
			return nil, errSyntax
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return nil, errSyntax
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, errSyntax
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					if r2, ok = p.hex4(); !ok {
						return nil, errSyntax
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errSyntax
		}
	}
	return nil, errSyntax
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// raw skips one value and returns its bytes. Nesting is tracked by
// counting brackets outside strings; the host sends valid JSON, which
// the gateway validated, so this does not validate the value itself.
func (p *parser) raw() ([]byte, error) {
	p.ws()
	start := p.i
	depth := 0
	for p.i < len(p.b) {
		switch c := p.b[p.i]; c {
		case '"':
			if _, err := p.skipString(); err != nil {
				return nil, err
			}
			if depth == 0 {
				return p.b[start:p.i], nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return p.rawEnd(start)
			}
			depth--
			if depth == 0 {
				p.i++
				return p.b[start:p.i], nil
			}
		case ',':
			if depth == 0 {
				return p.rawEnd(start)
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return p.rawEnd(start)
			}
		}
		p.i++
	}
	if depth == 0 && p.i > start {
		return p.b[start:p.i], nil
	}
	return nil, errSyntax
}

func (p *parser) rawEnd(start int) ([]byte, error) {
	if p.i == start {
		return nil, errSyntax
	}
	return p.b[start:p.i], nil
}

func (p *parser) skipString() (int, error) {
	p.i++ // opening quote
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '\\':
			p.i += 2
			continue
		case '"':
			p.i++
			return p.i, nil
		}
		p.i++
	}
	return 0, errSyntax
}
