package main

import (
	"encoding/json"
	"testing"
)

type marker struct {
	t, s int64
	c    int
}

func scanAll(b []byte) []marker {
	var out []marker
	var sc payloadScanner
	sc.reset(b)
	for {
		t, s, c, ok := sc.next()
		if !ok {
			return out
		}
		out = append(out, marker{t, s, c})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, payloadOverhead, 100, 1000} {
		p := appendPayload(nil, 1700000000123456789, 42, 7, size)
		if !json.Valid(p) {
			t.Fatalf("size %d: invalid JSON %s", size, p)
		}
		if size > payloadOverhead && len(p) < size-10 {
			t.Errorf("size %d: payload is only %d bytes", size, len(p))
		}
		got := scanAll(p)
		if len(got) != 1 || got[0] != (marker{1700000000123456789, 42, 7}) {
			t.Errorf("size %d: scanned %v", size, got)
		}
	}
}

func TestScanBatchFrame(t *testing.T) {
	// A Cometgate-style batch, a Faye-style delivery (with id), a reply
	// and a message with reordered keys and whitespace, as another
	// server's encoder might produce.
	frame := []byte(`[{"channel":"/a","data":` + string(appendPayload(nil, 100, 1, 0, 50)) + `},` +
		`{"id":"9","channel":"/a","data":` + string(appendPayload(nil, 200, 2, 0, 0)) + `},` +
		`{"id":"3","channel":"/meta/connect","successful":true},` +
		`{"channel":"/a","data":{"_p":"x","_c": 3,"_s": 3, "_t": 300}}]`)
	want := []marker{{100, 1, 0}, {200, 2, 0}, {300, 3, 3}}
	got := scanAll(frame)
	if len(got) != len(want) {
		t.Fatalf("scanned %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestScanIgnoresBrokenMarkers(t *testing.T) {
	for _, b := range []string{``, `[]`, `[{"_t":}]`, `{"_t":1,"_s":2}`, `"_t":"1","_s":2,"_c":3`} {
		if got := scanAll([]byte(b)); len(got) != 0 {
			t.Errorf("%s: scanned %v", b, got)
		}
	}
}

func TestNeedsDecode(t *testing.T) {
	cases := map[string]bool{
		`[{"channel":"/a","data":{"_t":1}}]`:                     false,
		`[{"channel":"/meta/connect","successful":true}]`:        true,
		`[{"channel":"/a","id":"4","successful":true}]`:          true,
		`[{"channel":"/meta/connect","advice":{"timeout":0}}]`:   true,
		`[{"channel":"/a","data":{}},{"channel":"/a","data":1}]`: false,
	}
	for frame, want := range cases {
		if got := needsDecode([]byte(frame)); got != want {
			t.Errorf("needsDecode(%s) = %v", frame, got)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	msgs, err := decodeBatch([]byte(`[{"id":7,"channel":"/meta/connect","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake","interval":0}},{"channel":"/s","id":"8","successful":true,"data":{"x":1}},{"channel":"/s","data":null}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].ID != "7" || msgs[0].ok() || msgs[0].Advice.Reconnect != "handshake" || *msgs[0].Advice.Interval != 0 {
		t.Errorf("first message: %+v", msgs[0])
	}
	if !msgs[1].ok() || !bool(msgs[1].Data) || msgs[2].isReply() || bool(msgs[2].Data) {
		t.Errorf("messages: %+v", msgs)
	}
	one, err := decodeBatch([]byte(` {"channel":"/x","successful":true} `), nil)
	if err != nil || len(one) != 1 || !one[0].ok() {
		t.Errorf("single object: %+v %v", one, err)
	}
}

func BenchmarkScanFrame(b *testing.B) {
	var frame []byte
	frame = append(frame, '[')
	for i := range 20 {
		if i > 0 {
			frame = append(frame, ',')
		}
		frame = append(frame, `{"channel":"/load/fanout","data":`...)
		frame = appendPayload(frame, 1700000000000000000, int64(i), 0, 100)
		frame = append(frame, '}')
	}
	frame = append(frame, ']')
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		var sc payloadScanner
		sc.reset(frame)
		for {
			if _, _, _, ok := sc.next(); !ok {
				break
			}
		}
	}
}

func TestDecodeBatchReusesCleanly(t *testing.T) {
	buf, err := decodeBatch([]byte(`[{"channel":"/a","data":{"_t":1}},{"channel":"/meta/connect","successful":true,"advice":{"timeout":5}}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := decodeBatch([]byte(`[{"channel":"/a","id":"2","successful":true},{"channel":"/b"}]`), buf[:0])
	if err != nil {
		t.Fatal(err)
	}
	if bool(msgs[0].Data) || msgs[1].Successful != nil || msgs[1].Advice != nil {
		t.Errorf("fields leaked from the previous decode: %+v", msgs)
	}
}
