//go:build wasip1

package guest

import "unsafe"

// The guest side of the ABI (see plugins/wasm/ABI.md). The host calls one
// export at a time.
var (
	input  []byte  // the host's input buffer, made by cometgate_alloc
	output []byte  // the last verdict record, read by the host after the call
	msg    Message // the message being filtered, reused
)

// cometgateAlloc makes the input buffer of size bytes and returns its
// address. The buffer stays valid (referenced here, and Go's collector
// does not move objects) until the next cometgate_alloc; the host writes
// each message into it and allocates again only for a larger one.
//
//go:wasmexport cometgate_alloc
func cometgateAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	input = make([]byte, size)
	return uint32(uintptr(unsafe.Pointer(&input[0])))
}

// cometgateFilter runs the handler on the message of size bytes (index
// and JSON) the host wrote at ptr (which must be the input buffer). It returns 0 to pass, or
// the verdict record's address in the high 32 bits and its length in the
// low 32 bits.
//
//go:wasmexport cometgate_filter
func cometgateFilter(ptr, size uint32) uint64 {
	in, ok := inputAt(ptr, size)
	if !ok {
		return result(Fail("input outside the buffer from cometgate_alloc"))
	}
	if err := ParseIndexed(in, &msg); err != nil {
		return result(Fail(err.Error()))
	}
	if handler == nil {
		return 0
	}
	v := handler(&msg)
	msg = Message{}
	return result(v)
}

// cometgateInit hands the "config" option's JSON to the ConfigHandler,
// once per instance, before any cometgate_filter call. It returns 0, or a
// failure record with the handler's error.
//
//go:wasmexport cometgate_init
func cometgateInit(ptr, size uint32) uint64 {
	in, ok := inputAt(ptr, size)
	if !ok {
		return result(Fail("input outside the buffer from cometgate_alloc"))
	}
	if configure == nil {
		return 0
	}
	if err := configure(in); err != nil {
		return result(Fail(err.Error()))
	}
	return 0
}

func inputAt(ptr, size uint32) ([]byte, bool) {
	if len(input) == 0 || uintptr(ptr) != uintptr(unsafe.Pointer(&input[0])) || int(size) > len(input) {
		return nil, false
	}
	return input[:size], true
}

func result(v Verdict) uint64 {
	if v.kind == KindPass {
		return 0
	}
	output = v.AppendRecord(output[:0])
	return uint64(uint32(uintptr(unsafe.Pointer(&output[0]))))<<32 | uint64(uint32(len(output)))
}
