package bayeux

import "strings"

// Kind is the kind of a channel.
type Kind uint8

// Channel kinds. The test is a prefix test including the trailing slash, as
// CometD's: "/meta" alone is a broadcast channel.
const (
	KindBroadcast Kind = iota
	KindMeta
	KindService
)

func (k Kind) String() string {
	switch k {
	case KindMeta:
		return "meta"
	case KindService:
		return "service"
	}
	return "broadcast"
}

// KindOf returns the kind of channel name.
func KindOf(name string) Kind {
	switch {
	case strings.HasPrefix(name, "/meta/"):
		return KindMeta
	case strings.HasPrefix(name, "/service/"):
		return KindService
	}
	return KindBroadcast
}

// Wild tells whether a channel name is a wildcard pattern.
type Wild uint8

// Wildcard kinds of the last segment.
const (
	NotWild  Wild = iota
	WildOne       // "/a/*": exactly one more segment
	WildDeep      // "/a/**": one or more segments
)

// ParseChannel normalizes and validates a channel name. It strips one
// trailing "/" (as CometD does) and accepts the characters CometD's
// validator accepts, minus those that could only appear in server-side
// template names; a wildcard ("*" or "**") may only be the whole last
// segment, and segments may not be empty. It returns the normalized name,
// its wildcard kind and whether it is valid.
func ParseChannel(name string) (string, Wild, bool) {
	if len(name) > 2 && name[len(name)-1] == '/' {
		name = name[:len(name)-1]
	}
	if len(name) < 2 || name[0] != '/' || len(name) > 1024 {
		return name, NotWild, false
	}
	segStart := 1
	for i := 1; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			if !validChannelChar(name[i]) {
				return name, NotWild, false
			}
			continue
		}
		seg := name[segStart:i]
		if seg == "" {
			return name, NotWild, false
		}
		if strings.IndexByte(seg, '*') >= 0 {
			last := i == len(name)
			switch {
			case last && seg == "*":
				return name, WildOne, true
			case last && seg == "**":
				return name, WildDeep, true
			default:
				return name, NotWild, false
			}
		}
		segStart = i + 1
	}
	return name, NotWild, true
}

func validChannelChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case ' ', '!', '#', '$', '(', ')', '*', '+', '-', '.', '@', '_', '~':
		return true
	}
	return false
}

// Match reports whether channel name (not a pattern) matches pattern, with
// Bayeux globbing: "/a/*" matches "/a/b" only; "/a/**" matches "/a/b" and
// "/a/b/c"; neither matches "/a". A non-wildcard pattern matches itself.
func Match(pattern, name string) bool {
	switch {
	case strings.HasSuffix(pattern, "/**"):
		prefix := pattern[:len(pattern)-2]
		return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
	case strings.HasSuffix(pattern, "/*"):
		prefix := pattern[:len(pattern)-1]
		return len(name) > len(prefix) && strings.HasPrefix(name, prefix) &&
			strings.IndexByte(name[len(prefix):], '/') < 0
	}
	return pattern == name
}

// ValidMessageID reports whether id is acceptable as a message id:
// CometD accepts only [A-Za-z0-9]+.
func ValidMessageID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
