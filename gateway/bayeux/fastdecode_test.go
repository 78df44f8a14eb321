package bayeux

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// fastSeeds are inputs the fast path takes (the first fastTaken), then near
// misses it must leave to encoding/json.
const fastTaken = 10

var fastSeeds = []string{
	`[{"id":"12","channel":"/chat/demo","clientId":"abc","data":{"user":"alice","chat":"hi"}},{"id":"13","channel":"/meta/connect","clientId":"abc","connectionType":"websocket","ext":{"ack":4}}]`,
	`[{"channel":"/meta/subscribe","clientId":"c","subscription":["/a","/b/**"],"id":7}]`,
	` [ { "channel" : "/a" , "data" : [ 1 , -0.5e+3 , true , false , null , "x\"\u00e9" ] , "zz" : { "k" : [ ] } } ] `,
	`[{"channel":"/a","data":"\ud83d\ude00","unknown":-0,"u2":1E5,"u3":0.25}]`,
	`[{"channel":"/a"},{"channel":"/b","id":"x1"},{"channel":"/c"},{"channel":"/d"},{"channel":"/e"}]`,
	`[{}]`, `[{"channel":"/a","timestamp":"t","version":"1.0","minimumVersion":"1.0"}]`,
	`[{"id":{}}]`, `[{"id":"a b"}]`, // taken, and marked invalid as encoding/json's would be
	`[{"channel":"/a","data":"\ud800","ext":{"k":"\udfff\ud83d"}}]`, // escaped lone surrogates stay escaped
	// Left to encoding/json:
	`[{"Channel":"/a"}]`, `[{"channel":"/a","channel":"/b"}]`, `[{"channel":"/\u0061"}]`,
	`[{"channel":null}]`, `[{"channel":"/a","data":null}]`, `[{"channel":5}]`,
	`[{"channel":"/a","advice":{"timeout":0}}]`, `[{"ſubscription":"/a","channel":"/x"}]`,
	`[{"channel":"/a","supportedConnectionTypes":["websocket"]}]`, `[]`, `[{"channel":"/a"}] x`,
	`[{"channel":"/a","data":01}]`, `[{"channel":"/a","data":1.}]`, `[{"channel":"/a","data":"\x"}]`,
	`[{"channel":"/a","data":tru}]`, `[{"channel":"/a",}]`, `[{"channel":"/a"},]`, `[7]`,
	// Refused by Decode before either path (invalid UTF-8):
	"[{\"channel\":\"/a\",\"data\":\"\xff\xfe\xed\xa0\x80\"}]",
	"[{\"channel\":\"/a\xff\"}]", "[{\"channel\":\"/a\",\"ext\":{\"k\":\"\xc0\xaf\"}}]",
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			// Decode refuses it before either path runs.
			if _, err := Decode(data, 4); !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("Decode(%q) error = %v; want ErrInvalidUTF8", data, err)
			}
			return
		}
		in := append([]byte(nil), data...)
		fast, ok := decodeFast(in, 4)
		if !ok {
			return
		}
		for i := range in {
			in[i] = 'x' // the messages must not point into the input
		}
		std, err := decodeStd(data, 4)
		if err != nil {
			t.Fatalf("fast path accepted %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q:\nfast %#v\nstd  %#v", data, fast, std)
		}
		for i := range fast {
			if out := AppendMessage(nil, &fast[i]); !utf8.Valid(out) || !json.Valid(out) {
				t.Fatalf("%q: message %d encodes to %q, not valid UTF-8 JSON", data, i, out)
			}
		}
	})
}

func TestDecodeFastTakesTheCommonShapes(t *testing.T) {
	for _, s := range fastSeeds[:fastTaken] {
		if _, ok := decodeFast([]byte(s), 0); !ok {
			t.Errorf("decodeFast(%s) gave up", s)
		}
	}
	for _, s := range fastSeeds[fastTaken:] {
		if !utf8.ValidString(s) {
			continue // Decode refuses it before decodeFast
		}
		if _, ok := decodeFast([]byte(s), 0); ok {
			t.Errorf("decodeFast(%s) took it; encoding/json should", s)
		}
	}
}
