package regex

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// wordList matches listed words in text as whole words, ignoring case as
// RE2's (?i) and strings.EqualFold do (Unicode simple folding). It splits
// text into words once and looks each up in a hash table, so a match
// costs the same for 1 or 10,000 listed words; a regular expression
// alternating the words costs Go's regexp package tens of microseconds
// to milliseconds per 200-byte message. An entry may be a phrase ("two
// words"); it then matches the same words with the same separators.
type wordList struct {
	byFirst map[uint64][]entry // by the hash of an entry's first word
	lens    uint64             // bit n: a first word of n runes (63: more)
	bloom   [16]uint64         // bit h>>54: a first word hashing to h
}

// entry is one listed word or phrase, folded.
type entry []rune

// newWordList makes a wordList of words, which must start with a word
// character (Validate checks it).
func newWordList(words []string) *wordList {
	l := &wordList{byFirst: make(map[uint64][]entry)}
	for _, w := range words {
		w = strings.TrimSpace(w)
		var e entry
		h, n, first := hashSeed, 0, true
		for _, r := range w {
			r = fold(r)
			e = append(e, r)
			if first && isWord(r) {
				h, n = hashRune(h, r), n+1
			} else {
				first = false
			}
		}
		if n == 0 {
			continue
		}
		l.lens |= lenBit(n)
		l.bloom[h>>60] |= 1 << (h >> 54 & 63)
		l.byFirst[h] = append(l.byFirst[h], e)
	}
	for _, es := range l.byFirst { // longest first: the longest match wins
		slices.SortStableFunc(es, func(a, b entry) int { return len(b) - len(a) })
	}
	return l
}

// next returns the first whole-word match in text at or after from.
func (l *wordList) next(text []byte, from int) (start, end int, ok bool) {
	i := from
	for i < len(text) {
		// skip to a word
		if c := text[i]; c < utf8.RuneSelf {
			if asciiFold[c] == 0 {
				i++
				continue
			}
		} else if r, size := utf8.DecodeRune(text[i:]); !isWord(r) {
			i += size
			continue
		}
		start = i
		h, n := hashSeed, 0
		for i < len(text) {
			if c := text[i]; c < utf8.RuneSelf {
				f := asciiFold[c]
				if f == 0 {
					break
				}
				h, n = hashRune(h, rune(f)), n+1
				i++
				continue
			}
			r, size := utf8.DecodeRune(text[i:])
			if !isWord(r) {
				break
			}
			h, n = hashRune(h, fold(r)), n+1
			i += size
		}
		if l.lens&lenBit(n) == 0 || l.bloom[h>>60]&(1<<(h>>54&63)) == 0 {
			continue
		}
		for _, e := range l.byFirst[h] {
			if end, ok := e.matchAt(text, start); ok {
				return start, end, true
			}
		}
	}
	return 0, 0, false
}

// asciiFold maps an ASCII word character to its fold, anything else to 0.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		if isWord(rune(c)) {
			t[c] = byte(fold(rune(c)))
		}
	}
	return
}()

// matchAt reports whether text at start holds e, folded, not followed by a
// word character, and where it ends.
func (e entry) matchAt(text []byte, start int) (int, bool) {
	i := start
	for _, want := range e {
		if i >= len(text) {
			return 0, false
		}
		r, size := utf8.DecodeRune(text[i:])
		if fold(r) != want {
			return 0, false
		}
		i += size
	}
	if i < len(text) {
		if r, _ := utf8.DecodeRune(text[i:]); isWord(r) {
			return 0, false
		}
	}
	return i, true
}

// fold returns the smallest rune of r's simple case-folding orbit, which
// stands for all of them (so K, k and the Kelvin sign fold alike).
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

// isWord reports whether r belongs to a word: a letter, a digit, a
// combining mark or an underscore.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// FNV-1a over runes.
const (
	hashSeed  uint64 = 14695981039346656037
	hashPrime uint64 = 1099511628211
)

func hashRune(h uint64, r rune) uint64 {
	return (h ^ uint64(r)) * hashPrime
}

func lenBit(n int) uint64 { return 1 << min(n, 63) }
