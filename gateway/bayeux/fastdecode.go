package bayeux

import (
	"bytes"
	"unicode/utf8"
)

// decodeFast decodes the shape nearly every request has, without
// reflection: an array of objects whose string fields are plain strings
// (no escapes) and whose other known fields are any JSON value but null.
// Unknown fields are validated and skipped. It gives up (ok false) on
// anything else: an advice or supportedConnectionTypes field (handshakes
// and first connects), null, a wrong type, a duplicate or differently
// cased field name, invalid JSON, an empty or oversized batch. Decode then
// uses encoding/json, so both paths give the same result for every input
// (FuzzDecodeFast checks it). data must be valid UTF-8 (Decode checks it
// first), so strings are not checked again.
//
// The messages' raw fields point into one copy of data, never into data
// itself, and their capacity ends with them, so appending to one cannot
// overwrite another.
func decodeFast(data []byte, maxBatch int) ([]Message, bool) {
	d := fastDecoder{buf: bytes.Clone(data)}
	d.space()
	if !d.consume('[') {
		return nil, false
	}
	var small [4]wireMessage // most batches: no allocation
	wire := small[:0]
	for {
		d.space()
		if !d.consume('{') {
			return nil, false
		}
		if maxBatch > 0 && len(wire) == maxBatch {
			return nil, false
		}
		wire = append(wire, wireMessage{})
		if !d.object(&wire[len(wire)-1]) {
			return nil, false
		}
		d.space()
		if d.consume(',') {
			continue
		}
		if !d.consume(']') {
			return nil, false
		}
		break
	}
	d.space()
	if d.pos != len(d.buf) {
		return nil, false
	}
	msgs := make([]Message, len(wire))
	for i := range wire {
		fromWire(&msgs[i], &wire[i])
	}
	return msgs, true
}

// maxFastDepth bounds the nesting of values decodeFast validates itself;
// deeper input goes to encoding/json, which has its own limit.
const maxFastDepth = 256

type fastDecoder struct {
	buf []byte
	pos int
}

func (d *fastDecoder) space() {
	for d.pos < len(d.buf) && isSpace(d.buf[d.pos]) {
		d.pos++
	}
}

func (d *fastDecoder) consume(c byte) bool {
	if d.pos < len(d.buf) && d.buf[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// Known fields, as bits of a set to catch duplicates.
const (
	fChannel = 1 << iota
	fID
	fClientID
	fData
	fExt
	fSubscription
	fConnectionType
	fVersion
	fMinimumVersion
	fTimestamp
)

// knownFields are the wire names of wireMessage's fields, to recognise a
// name that encoding/json would match case-insensitively.
var knownFields = []string{
	"channel", "id", "clientId", "data", "ext", "advice", "subscription",
	"connectionType", "supportedConnectionTypes", "version",
	"minimumVersion", "timestamp",
}

// object decodes the members of an object whose '{' was consumed.
func (d *fastDecoder) object(w *wireMessage) bool {
	seen := 0
	d.space()
	if d.consume('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.plainString()
		if !ok {
			return false
		}
		d.space()
		if !d.consume(':') {
			return false
		}
		d.space()
		var bit int
		var str *string
		var raw *[]byte
		switch string(key) { // no allocation: the compiler compares in place
		case "channel":
			bit, str = fChannel, &w.Channel
		case "clientId":
			bit, str = fClientID, &w.ClientID
		case "connectionType":
			bit, str = fConnectionType, &w.ConnectionType
		case "version":
			bit, str = fVersion, &w.Version
		case "minimumVersion":
			bit, str = fMinimumVersion, &w.MinimumVersion
		case "timestamp":
			bit, str = fTimestamp, &w.Timestamp
		case "id":
			bit, raw = fID, (*[]byte)(&w.ID)
		case "data":
			bit, raw = fData, (*[]byte)(&w.Data)
		case "ext":
			bit, raw = fExt, (*[]byte)(&w.Ext)
		case "subscription":
			bit, raw = fSubscription, (*[]byte)(&w.Subscription)
		default:
			if !unknownField(key) {
				return false
			}
			if !d.value(0) {
				return false
			}
		}
		if bit != 0 {
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			if str != nil {
				s, ok := d.plainString()
				if !ok {
					return false
				}
				*str = string(s)
			} else {
				start := d.pos
				if d.pos < len(d.buf) && d.buf[d.pos] == 'n' {
					return false // null: encoding/json decides what it means
				}
				if !d.value(0) {
					return false
				}
				*raw = d.buf[start:d.pos:d.pos]
			}
		}
		d.space()
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// unknownField reports whether key is a field decodeFast may skip: ASCII,
// and not one of the known names in another case (encoding/json matches
// names case-insensitively) nor one decodeFast leaves to encoding/json.
func unknownField(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false // Unicode case folding: leave it to encoding/json
		}
	}
	for _, f := range knownFields {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return true
}

// plainString reads a string without escapes or control characters, and
// returns its contents (valid UTF-8, as the whole input is).
func (d *fastDecoder) plainString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.pos
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			s := d.buf[start:d.pos]
			d.pos++
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		d.pos++
	}
	return nil, false
}

// value validates one JSON value and moves past it.
func (d *fastDecoder) value(depth int) bool {
	if d.pos >= len(d.buf) || depth > maxFastDepth {
		return false
	}
	switch c := d.buf[d.pos]; {
	case c == '"':
		return d.string()
	case c == '{':
		d.pos++
		d.space()
		if d.consume('}') {
			return true
		}
		for {
			d.space()
			if !d.string() {
				return false
			}
			d.space()
			if !d.consume(':') {
				return false
			}
			d.space()
			if !d.value(depth + 1) {
				return false
			}
			d.space()
			if d.consume(',') {
				continue
			}
			return d.consume('}')
		}
	case c == '[':
		d.pos++
		d.space()
		if d.consume(']') {
			return true
		}
		for {
			d.space()
			if !d.value(depth + 1) {
				return false
			}
			d.space()
			if d.consume(',') {
				continue
			}
			return d.consume(']')
		}
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return false
}

func (d *fastDecoder) literal(word string) bool {
	if !bytes.HasPrefix(d.buf[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

// string validates a JSON string, escapes included.
func (d *fastDecoder) string() bool {
	if !d.consume('"') {
		return false
	}
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			d.pos++
			if d.pos >= len(d.buf) {
				return false
			}
			switch d.buf[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				if d.pos+5 > len(d.buf) {
					return false
				}
				for _, h := range d.buf[d.pos+1 : d.pos+5] {
					if !isHex(h) {
						return false
					}
				}
				d.pos += 5
			default:
				return false
			}
		default:
			d.pos++
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) number() bool {
	d.consume('-')
	switch {
	case d.consume('0'):
	case d.pos < len(d.buf) && d.buf[d.pos] >= '1' && d.buf[d.pos] <= '9':
		d.digits()
	default:
		return false
	}
	if d.consume('.') {
		if d.digits() == 0 {
			return false
		}
	}
	if d.consume('e') || d.consume('E') {
		if !d.consume('+') {
			d.consume('-')
		}
		if d.digits() == 0 {
			return false
		}
	}
	return true
}

func (d *fastDecoder) digits() int {
	start := d.pos
	for d.pos < len(d.buf) && d.buf[d.pos] >= '0' && d.buf[d.pos] <= '9' {
		d.pos++
	}
	return d.pos - start
}
