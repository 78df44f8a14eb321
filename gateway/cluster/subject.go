package cluster

import (
	"errors"
	"strings"
)

// escapeByte reports whether channel byte c must be escaped in a subject
// token: everything but [A-Za-z0-9-] (so '.', '*', '>', spaces, '_'
// itself and every non-ASCII byte).
func escapeByte(c byte) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
}

const hexDigits = "0123456789ABCDEF"

// appendToken appends Bayeux channel segment seg as one NATS subject token:
// bytes outside [A-Za-z0-9-] become _XX (two upper-case hex digits), so
// the mapping is reversible and no segment can make a wildcard or split a
// token.
func appendToken(dst []byte, seg string) []byte {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if escapeByte(c) {
			dst = append(dst, '_', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// SubjectOf returns the broadcast subject of Bayeux channel or pattern
// name (which must be valid and start with '/') under prefix: each segment
// becomes a token (see appendToken), and a last segment "*" or "**" the
// NATS wildcard "*" or ">".
func SubjectOf(prefix, name string) string {
	b := make([]byte, 0, len(prefix)+3+len(name)+8)
	b = append(b, prefix...)
	b = append(b, ".b"...)
	rest := name[1:]
	for {
		i := strings.IndexByte(rest, '/')
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		b = append(b, '.')
		switch {
		case i < 0 && seg == "*":
			b = append(b, '*')
		case i < 0 && seg == "**":
			b = append(b, '>')
		default:
			b = appendToken(b, seg)
		}
		if i < 0 {
			return string(b)
		}
		rest = rest[i+1:]
	}
}

var errBadSubject = errors.New("cluster: not a broadcast subject")

// ChannelOf reverses SubjectOf for a subject without wildcards.
func ChannelOf(prefix, subject string) (string, error) {
	head := prefix + ".b."
	if !strings.HasPrefix(subject, head) {
		return "", errBadSubject
	}
	rest := subject[len(head):]
	b := make([]byte, 0, len(rest)+1)
	for _, tok := range strings.Split(rest, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return "", errBadSubject
		}
		b = append(b, '/')
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c != '_' {
				if escapeByte(c) {
					return "", errBadSubject
				}
				b = append(b, c)
				continue
			}
			if i+2 >= len(tok) {
				return "", errBadSubject
			}
			hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
			if hi < 0 || lo < 0 {
				return "", errBadSubject
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
		}
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
