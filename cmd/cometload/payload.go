package main

import (
	"bytes"
	"strconv"
)

// The data of every message the tool publishes is a JSON object with its
// own markers, so that a receiver can account for it without decoding
// the frame:
//
//	{"_t":<send time, Unix ns>,"_s":<sequence of this publisher>,"_c":<publisher index>,"_p":"xxx…"}
//
// Servers may reorder keys or add whitespace when they re-encode data;
// the scanner pairs the k-th occurrence of each marker, which stays right
// as long as each message holds each marker exactly once.
var (
	markTime = []byte(`"_t":`)
	markSeq  = []byte(`"_s":`)
	markPub  = []byte(`"_c":`)
)

// payloadOverhead is the size of a payload with an empty padding and
// 19-digit time, 6-digit sequence and 5-digit publisher fields.
const payloadOverhead = len(`{"_t":1700000000000000000,"_s":123456,"_c":12345,"_p":""}`)

// appendPayload appends the data object of one published message to b.
// The padding makes the object about size bytes long; it is never
// shorter than the markers themselves.
func appendPayload(b []byte, sendNS, seq int64, pub int, size int) []byte {
	b = append(b, `{"_t":`...)
	b = strconv.AppendInt(b, sendNS, 10)
	b = append(b, `,"_s":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"_c":`...)
	b = strconv.AppendInt(b, int64(pub), 10)
	b = append(b, `,"_p":"`...)
	for i := payloadOverhead; i < size; i++ {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// payloadScanner finds the tool's payloads in a frame or response body.
// It allocates nothing; its zero value after reset is ready to use.
type payloadScanner struct {
	b          []byte
	it, is, ic int // search positions of the three markers
}

func (sc *payloadScanner) reset(b []byte) { *sc = payloadScanner{b: b} }

// next returns the markers of the next payload; ok is false when there is
// none left.
func (sc *payloadScanner) next() (sendNS, seq int64, pub int, ok bool) {
	var c int64
	if sendNS, sc.it, ok = findInt(sc.b, sc.it, markTime); !ok {
		return 0, 0, 0, false
	}
	if seq, sc.is, ok = findInt(sc.b, sc.is, markSeq); !ok {
		return 0, 0, 0, false
	}
	if c, sc.ic, ok = findInt(sc.b, sc.ic, markPub); !ok {
		return 0, 0, 0, false
	}
	return sendNS, seq, int(c), true
}

// findInt finds the next occurrence of mark in b at or after from that is
// followed by an integer, and returns the integer and the position after
// it.
func findInt(b []byte, from int, mark []byte) (v int64, end int, ok bool) {
	for from < len(b) {
		i := bytes.Index(b[from:], mark)
		if i < 0 {
			return 0, len(b), false
		}
		p := from + i + len(mark)
		for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
			p++
		}
		neg := p < len(b) && b[p] == '-'
		if neg {
			p++
		}
		start := p
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			v = v*10 + int64(b[p]-'0')
			p++
		}
		if p > start {
			if neg {
				v = -v
			}
			return v, p, true
		}
		v, from = 0, p
	}
	return 0, len(b), false
}
