package guest

import (
	"encoding/binary"
	"errors"
	"unsafe"
)

// The input the host writes for each message is an index followed by the
// message's JSON (see ABI.md). The index locates every field inside the
// JSON, so that the SDK reads a message without scanning it: in a guest
// compiled by wazero with the time limit on, each loop iteration costs
// tens of nanoseconds, so a scan of the envelope would cost more than the
// whole call otherwise does.
const (
	// IndexSize is the size of the index before the JSON.
	IndexSize = 72
	// ABIVersion is the index's version, its first word.
	ABIVersion = 1
)

// Index word positions: version, flags (bit i: string field i holds JSON
// escapes), direction code, source code, then an (offset, length) pair
// per field, offsets counted from the start of the JSON.
const (
	idxVersion = iota
	idxFlags
	idxDirection
	idxSource
	idxFields // 7 pairs: the fields below
)

// Fields of the index, in order. The strings are located without their
// quotes; data and ext are raw JSON (ext's length is 0 when absent).
const (
	FieldChannel = iota
	FieldID
	FieldClientID
	FieldUser
	FieldTransport
	FieldData
	FieldExt
	numFields
)

// Direction and source codes of the index.
var (
	directions = [...]string{"", "inbound", "outbound"}
	sources    = [...]string{"", "client", "api", "backend", "broker"}
)

var errIndex = errors.New("guest: malformed message index")

// ParseIndexed reads one input (index and JSON) into m without scanning
// or copying it: m's strings, Data and Ext point into in (a string with
// JSON escapes, rare, is unescaped into a copy).
func ParseIndexed(in []byte, m *Message) error {
	if len(in) < IndexSize || binary.LittleEndian.Uint32(in) != ABIVersion {
		return errIndex
	}
	js := in[IndexSize:]
	flags := binary.LittleEndian.Uint32(in[4*idxFlags:])
	dir := binary.LittleEndian.Uint32(in[4*idxDirection:])
	src := binary.LittleEndian.Uint32(in[4*idxSource:])
	if dir >= uint32(len(directions)) || src >= uint32(len(sources)) {
		return errIndex
	}
	*m = Message{Direction: directions[dir], Source: sources[src]}
	var ok bool
	// Unrolled: in a guest with the time limit on, every loop iteration
	// and every call that is not inlined costs tens of nanoseconds.
	m.Channel, ok = field(in, js, flags, FieldChannel)
	if !ok {
		return errIndex
	}
	m.ID, ok = field(in, js, flags, FieldID)
	if !ok {
		return errIndex
	}
	m.Client.ID, ok = field(in, js, flags, FieldClientID)
	if !ok {
		return errIndex
	}
	m.Client.User, ok = field(in, js, flags, FieldUser)
	if !ok {
		return errIndex
	}
	m.Client.Transport, ok = field(in, js, flags, FieldTransport)
	if !ok {
		return errIndex
	}
	if m.Data, ok = span(in, js, FieldData); !ok {
		return errIndex
	}
	if m.Ext, ok = span(in, js, FieldExt); !ok {
		return errIndex
	}
	if len(m.Ext) == 0 {
		m.Ext = nil
	}
	return nil
}

// span returns field f's bytes in js.
func span(in, js []byte, f int) ([]byte, bool) {
	off := binary.LittleEndian.Uint32(in[4*(idxFields+2*f):])
	n := binary.LittleEndian.Uint32(in[4*(idxFields+2*f)+4:])
	if uint64(off)+uint64(n) > uint64(len(js)) {
		return nil, false
	}
	return js[off : off+n], true
}

// field returns string field f: a view of js, or an unescaped copy.
func field(in, js []byte, flags uint32, f int) (string, bool) {
	b, ok := span(in, js, f)
	if !ok || len(b) == 0 {
		return "", ok
	}
	if flags&(1<<f) == 0 {
		return unsafe.String(&b[0], len(b)), true
	}
	off := cap(js) - cap(b) // b's offset in js
	if off == 0 || off+len(b) >= len(js) {
		return "", false
	}
	p := parser{b: js[:off+len(b)+1], i: off - 1} // at the opening quote
	s, err := p.strBytes()
	return string(s), err == nil
}
