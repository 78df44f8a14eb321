package authz

import (
	"math"
	"strings"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// pattern is a channel name or a wildcard pattern, as a set of channels:
// those whose first segs segments are lit's, followed by nothing
// (NotWild), one segment (WildOne) or one or more (WildDeep).
type pattern struct {
	lit  string      // "/a/b" for "/a/b", "/a/b/*" and "/a/b/**"; "" for "/*" and "/**"
	segs int         // segments in lit
	wild bayeux.Wild // of the last segment
	text string      // the pattern as written (normalized)
}

// parsePattern parses a valid channel name or pattern.
func parsePattern(s string) pattern {
	p := pattern{lit: s, text: s}
	switch {
	case strings.HasSuffix(s, "/**"):
		p.lit, p.wild = s[:len(s)-3], bayeux.WildDeep
	case strings.HasSuffix(s, "/*"):
		p.lit, p.wild = s[:len(s)-2], bayeux.WildOne
	}
	p.segs = strings.Count(p.lit, "/")
	return p
}

// String returns the pattern as written.
func (p pattern) String() string { return p.text }

// matchName reports whether channel name ch (not a pattern) is one of
// p's channels, as bayeux.Match(p.String(), ch).
func (p pattern) matchName(ch string) bool {
	switch p.wild {
	case bayeux.WildOne:
		prefix := p.text[:len(p.text)-1] // "/a/"
		return len(ch) > len(prefix) && ch[:len(prefix)] == prefix && strings.IndexByte(ch[len(prefix):], '/') < 0
	case bayeux.WildDeep:
		prefix := p.text[:len(p.text)-2]
		return len(ch) > len(prefix) && ch[:len(prefix)] == prefix
	}
	return ch == p.text
}

// same reports whether p and q are the same set of channels.
func (p pattern) same(q pattern) bool { return p.lit == q.lit && p.wild == q.wild }

// lengths returns the least and the most segments of p's channels.
func (p pattern) lengths() (lo, hi int) {
	switch p.wild {
	case bayeux.WildOne:
		return p.segs + 1, p.segs + 1
	case bayeux.WildDeep:
		return p.segs + 1, math.MaxInt
	}
	return p.segs, p.segs
}

// intersect returns the pattern of the channels both p and q match, if
// any. It is always one pattern: the longer literal part followed by
// nothing, "/*" or "/**". p covers q when intersect(p, q) is the same
// as q.
func intersect(p, q pattern) (pattern, bool) {
	short, long := p, q
	if short.segs > long.segs {
		short, long = long, short
	}
	if short.lit != "" && long.lit != short.lit && !strings.HasPrefix(long.lit, short.lit+"/") {
		return pattern{}, false
	}
	plo, phi := p.lengths()
	qlo, qhi := q.lengths()
	lo, hi := max(plo, qlo), min(phi, qhi)
	if lo > hi {
		return pattern{}, false
	}
	// lo is long.segs or long.segs+1 (see the package tests).
	in := pattern{lit: long.lit, segs: long.segs}
	switch {
	case lo == long.segs:
		in.text = long.lit
	case hi == lo:
		in.wild, in.text = bayeux.WildOne, long.lit+"/*"
	default:
		in.wild, in.text = bayeux.WildDeep, long.lit+"/**"
	}
	return in, true
}
