package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/cometgate/cometgate/gateway/bayeux"

	"github.com/cometgate/cometgate/plugins"
)

// The host side of the ABI; see ABI.md.

// Export names.
const (
	exportAlloc      = "cometgate_alloc"
	exportFilter     = "cometgate_filter"
	exportInit       = "cometgate_init"
	exportInitialize = "_initialize"
)

// Verdict records.
const (
	kindPass    = 0
	kindRewrite = 1
	kindReject  = 2
	kindFail    = 3

	flagData = 1
	flagExt  = 2

	headerSize = 12
)

// Bounds on what the host writes and reads.
const (
	// minInput is the smallest input buffer asked of a guest; larger ones
	// are asked in powers of two, so that an instance allocates rarely.
	minInput = 4 << 10
	// maxRecord bounds a verdict record (the new data and ext together).
	maxRecord = 4 << 20
	// maxReason bounds a rejection's or failure's reason in a record.
	maxReason = 4 << 10
)

// errGarbage is wrapped by the errors for verdicts that break the ABI.
var errGarbage = errors.New("malformed verdict")

// The input index (see ABI.md and guest.ParseIndexed).
const (
	indexSize  = 72
	abiVersion = 1

	idxFlags     = 1
	idxDirection = 2
	idxSource    = 3
	idxFields    = 4

	fieldChannel   = 0
	fieldID        = 1
	fieldClientID  = 2
	fieldUser      = 3
	fieldTransport = 4
	fieldData      = 5
	fieldExt       = 6
)

// appendMessage appends m as the ABI's input to b: the index, then the
// message's JSON envelope.
func appendMessage(b []byte, m *plugins.Message) []byte {
	start := len(b)
	b = append(b, make([]byte, indexSize)...)
	js := len(b)
	var flags uint32
	idx := func(i int, v uint32) {
		binary.LittleEndian.PutUint32(b[start+4*i:], v)
	}
	span := func(field, from int) {
		idx(idxFields+2*field, uint32(from-js))
		idx(idxFields+2*field+1, uint32(len(b)-from))
	}
	str := func(field int, s string) {
		from := len(b)
		b = bayeux.AppendString(b, s)
		if len(b)-from != len(s)+2 {
			flags |= 1 << field
		}
		idx(idxFields+2*field, uint32(from+1-js))
		idx(idxFields+2*field+1, uint32(len(b)-from-2))
	}
	b = append(b, `{"channel":`...)
	str(fieldChannel, m.Channel)
	if m.ID != "" {
		b = append(b, `,"id":`...)
		str(fieldID, m.ID)
	}
	b = append(b, `,"direction":"`...)
	b = append(b, m.Direction.String()...)
	b = append(b, `","source":"`...)
	b = append(b, m.Source.String()...)
	b = append(b, `","client":{"id":`...)
	str(fieldClientID, m.Client.ID)
	b = append(b, `,"user":`...)
	str(fieldUser, m.Client.User)
	b = append(b, `,"transport":`...)
	str(fieldTransport, m.Client.Transport)
	b = append(b, `},"data":`...)
	from := len(b)
	if len(m.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, m.Data...)
	}
	span(fieldData, from)
	if len(m.Ext) > 0 {
		b = append(b, `,"ext":`...)
		from = len(b)
		b = append(b, m.Ext...)
		span(fieldExt, from)
	}
	b = append(b, '}')
	idx(0, abiVersion)
	idx(idxFlags, flags)
	if m.Direction <= plugins.Outbound {
		idx(idxDirection, uint32(m.Direction))
	}
	if m.Source <= plugins.FromBroker {
		idx(idxSource, uint32(m.Source))
	}
	return b
}

// verdict is a decoded record. Its slices are copies, owned by the host.
type verdict struct {
	kind      byte
	flags     byte
	code      int
	data, ext []byte
	reason    string
}

// decodeRecord checks and decodes a verdict record read from guest
// memory; rec is the guest's memory, so everything kept is copied.
func decodeRecord(rec []byte) (verdict, error) {
	if len(rec) < headerSize {
		return verdict{}, fmt.Errorf("%w: %d bytes, shorter than its header", errGarbage, len(rec))
	}
	v := verdict{kind: rec[0], flags: rec[1], code: int(binary.LittleEndian.Uint16(rec[2:]))}
	a := uint64(binary.LittleEndian.Uint32(rec[4:]))
	c := uint64(binary.LittleEndian.Uint32(rec[8:]))
	if headerSize+a+c != uint64(len(rec)) {
		return verdict{}, fmt.Errorf("%w: lengths %d+%d do not add up to the record's %d bytes", errGarbage, a, c, len(rec))
	}
	body := rec[headerSize:]
	switch v.kind {
	case kindPass:
		if a+c != 0 {
			return verdict{}, fmt.Errorf("%w: a pass with %d bytes", errGarbage, a+c)
		}
		return v, nil
	case kindRewrite:
		if v.flags&^(flagData|flagExt) != 0 {
			return verdict{}, fmt.Errorf("%w: unknown rewrite flags %#x", errGarbage, v.flags)
		}
		if v.flags&flagData == 0 && a != 0 || v.flags&flagExt == 0 && c != 0 {
			return verdict{}, fmt.Errorf("%w: rewrite lengths without their flags", errGarbage)
		}
		out := make([]byte, a+c) // one allocation for both
		copy(out, body)
		if v.flags&flagData != 0 {
			v.data = out[:a:a]
		}
		if v.flags&flagExt != 0 {
			v.ext = out[a:]
		}
		return v, nil
	case kindReject, kindFail:
		if a > maxReason || c != 0 {
			return verdict{}, fmt.Errorf("%w: reason of %d bytes", errGarbage, a)
		}
		if v.kind == kindReject && v.code != 0 && (v.code < 400 || v.code > 599) {
			return verdict{}, fmt.Errorf("%w: rejection code %d outside 400-599", errGarbage, v.code)
		}
		v.reason = string(body[:a])
		return v, nil
	}
	return verdict{}, fmt.Errorf("%w: unknown kind %d", errGarbage, v.kind)
}

// apply applies v to m: nil to pass (m rewritten in place for a
// rewrite), a *plugins.Rejection, or the guest's failure.
func (v *verdict) apply(m *plugins.Message) error {
	switch v.kind {
	case kindRewrite:
		if v.flags&flagData != 0 {
			m.Data = v.data
		}
		if v.flags&flagExt != 0 {
			m.Ext = v.ext
		}
	case kindReject:
		code := v.code
		if code == 0 {
			code = 403
		}
		return plugins.RejectCode(code, v.reason)
	case kindFail:
		return fmt.Errorf("guest failed: %s", oneLine(v.reason))
	}
	return nil
}
