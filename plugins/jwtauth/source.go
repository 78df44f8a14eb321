package jwtauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cometgate/cometgate/plugins"
)

// source is one place a token is looked for: a path in the handshake's
// ext, or a request header.
type source struct {
	ext    []string // object keys from ext's root; nil for a header
	header string   // header name; "" for ext
}

// parseSources parses the from option.
func parseSources(from []string) ([]source, error) {
	out := make([]source, 0, len(from))
	for i, f := range from {
		kind, arg, _ := strings.Cut(f, ":")
		switch {
		case kind == "ext" && arg != "":
			path := strings.Split(arg, ".")
			for _, p := range path {
				if p == "" {
					return nil, fmt.Errorf("from[%d]: %q: empty key in the path", i, f)
				}
			}
			out = append(out, source{ext: path})
		case kind == "header" && arg != "" && !strings.ContainsAny(arg, " :\t"):
			out = append(out, source{header: http.CanonicalHeaderKey(arg)})
		default:
			return nil, fmt.Errorf("from[%d]: %q: want ext:<dotted path> or header:<Name>", i, f)
		}
	}
	return out, nil
}

// token returns the first token found in r's sources. It returns
// plugins.ErrNoCredentials when there is none, and a rejection when the
// first place present holds something that is not a token.
func (a *Authenticator) token(r *plugins.Request) (string, error) {
	var ext map[string]json.RawMessage // decoded on first use
	extRead := false
	for _, s := range a.sources {
		if s.header != "" {
			if tok, ok := headerToken(r.Header, s.header); ok {
				return tok, nil
			}
			continue
		}
		if !extRead {
			extRead = true
			if len(r.Ext) > 0 && json.Unmarshal(r.Ext, &ext) != nil {
				ext = nil
			}
		}
		raw, ok := extPath(ext, s.ext)
		if !ok {
			continue
		}
		var tok string
		if err := json.Unmarshal(raw, &tok); err != nil {
			return "", a.refuse(ReasonInvalid, fmt.Errorf("ext.%s is not a string", strings.Join(s.ext, ".")))
		}
		if tok != "" {
			return tok, nil
		}
	}
	return "", plugins.ErrNoCredentials
}

// extPath returns the JSON value at path in ext, if present and not null.
func extPath(ext map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	m := ext
	for i, p := range path {
		raw, ok := m[p]
		if !ok || string(raw) == "null" {
			return nil, false
		}
		if i == len(path)-1 {
			return raw, true
		}
		m = nil
		if json.Unmarshal(raw, &m) != nil {
			return nil, false
		}
	}
	return nil, false
}

// headerToken reads a token from header name: the Authorization header
// must use the Bearer scheme; other headers may.
func headerToken(h map[string][]string, name string) (string, bool) {
	v := strings.TrimSpace(http.Header(h).Get(name))
	if v == "" {
		return "", false
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	} else if name == "Authorization" {
		return "", false
	}
	return v, v != ""
}
