// Command profanity is a WebAssembly filter that masks (or rejects) the
// words of a list in the string values of a message's data, matching
// whole words, case-insensitively. It scans the raw JSON without
// encoding/json, and copies the data only when a word matches.
//
// Config (the wasm filter's "config" option), all optional:
//
//	words: [darn, heck]   # ASCII letters and digits; default darn, heck, drat
//	mode: replace         # replace (each letter by '*', the default) or reject (403::profanity)
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cometgate/cometgate/plugins/wasm/guest"
)

type options struct {
	Words []string `json:"words"`
	Mode  string   `json:"mode"`
}

var (
	words  = [][]byte{[]byte("darn"), []byte("heck"), []byte("drat")}
	reject bool
)

func init() {
	guest.Configure(configure)
	guest.Handle(filter)
}

func configure(cfg []byte) error {
	var o options
	if err := json.Unmarshal(cfg, &o); err != nil {
		return fmt.Errorf("profanity: config: %w", err)
	}
	switch o.Mode {
	case "", "replace":
	case "reject":
		reject = true
	default:
		return fmt.Errorf("profanity: mode %q: want replace or reject", o.Mode)
	}
	if o.Words != nil {
		words = words[:0]
		for _, w := range o.Words {
			if w == "" {
				return errors.New("profanity: an empty word")
			}
			for i := 0; i < len(w); i++ {
				if !isWord(w[i]) {
					return fmt.Errorf("profanity: word %q: only ASCII letters and digits", w)
				}
			}
			words = append(words, lower([]byte(w)))
		}
	}
	return nil
}

func filter(m *guest.Message) guest.Verdict {
	out := mask(m.Data)
	if out == nil {
		return guest.Pass()
	}
	if reject {
		return guest.Reject(403, "profanity")
	}
	return guest.Rewrite(out, nil)
}

// buf is reused: the verdict's data is copied by the SDK before the next
// call.
var buf []byte

// mask returns data with every listed word inside a JSON string replaced
// by asterisks, or nil when there is none.
func mask(data []byte) []byte {
	var out []byte
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch {
		case c == '\\':
			i++ // skip the escaped byte
			continue
		case c == '"':
			inString = false
			continue
		case !isWord(c) || i > 0 && isWord(data[i-1]):
			continue
		}
		for _, w := range words {
			end := i + len(w)
			if end > len(data) || end < len(data) && isWord(data[end]) || !equalFold(data[i:end], w) {
				continue
			}
			if out == nil {
				out = append(buf[:0], data...)
				buf = out
			}
			for j := i; j < end; j++ {
				out[j] = '*'
			}
			i = end - 1
			break
		}
	}
	return out
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func equalFold(b, lowerWord []byte) bool {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerWord[i] {
			return false
		}
	}
	return true
}

func lower(b []byte) []byte {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func main() {}
