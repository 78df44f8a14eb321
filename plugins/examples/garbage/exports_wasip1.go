//go:build wasip1

package main

import (
	"bytes"
	"encoding/binary"
	"unsafe"
)

var (
	input  []byte
	record []byte
)

//go:wasmexport cometgate_alloc
func alloc(size uint32) uint32 {
	input = make([]byte, size+1)
	return uint32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport cometgate_filter
func filter(ptr, size uint32) uint64 {
	msg := input[:size]
	rec := func(kind byte, code uint16, a, b uint32, n int) uint64 {
		record = make([]byte, 12+n)
		record[0] = kind
		binary.LittleEndian.PutUint16(record[2:], code)
		binary.LittleEndian.PutUint32(record[4:], a)
		binary.LittleEndian.PutUint32(record[8:], b)
		return uint64(uint32(uintptr(unsafe.Pointer(&record[0]))))<<32 | uint64(len(record))
	}
	switch {
	case bytes.Contains(msg, []byte(`"oob"`)):
		return uint64(0xfffff000)<<32 | 64
	case bytes.Contains(msg, []byte(`"len"`)):
		return rec(1, 0, 100, 0, 4)
	case bytes.Contains(msg, []byte(`"kind"`)):
		return rec(9, 0, 0, 0, 0)
	case bytes.Contains(msg, []byte(`"code"`)):
		return rec(2, 99, 2, 0, 2)
	case bytes.Contains(msg, []byte(`"huge"`)):
		return uint64(uint32(uintptr(unsafe.Pointer(&input[0]))))<<32 | uint64(64<<20)
	}
	return 0
}
