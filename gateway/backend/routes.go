package backend

import (
	"fmt"
	"strings"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// route is one compiled RouteSpec.
type route struct {
	RouteSpec
	pattern string      // normalized channel pattern
	wild    bayeux.Wild // wildcard kind of pattern
	prefix  string      // pattern without its wildcard segment
	b       *backendConn
	method  *method // resolved dynamic method, nil for the contract
}

// table holds the routes of one type, most specific first.
type table []*route

// specificity orders routes: exact names first, then longer prefixes, then
// "*" before "**".
func (r *route) less(o *route) bool {
	if (r.wild == bayeux.NotWild) != (o.wild == bayeux.NotWild) {
		return r.wild == bayeux.NotWild
	}
	if len(r.prefix) != len(o.prefix) {
		return len(r.prefix) > len(o.prefix)
	}
	return r.wild < o.wild
}

func (t table) insert(r *route) (table, error) {
	for _, o := range t {
		if o.pattern == r.pattern {
			return t, fmt.Errorf("routes for %s are ambiguous: %s is bound twice (backends %q and %q)", r.Type, r.pattern, o.Backend, r.Backend)
		}
	}
	t = append(t, r)
	for i := len(t) - 1; i > 0 && t[i].less(t[i-1]); i-- {
		t[i], t[i-1] = t[i-1], t[i]
	}
	return t, nil
}

// byPattern returns the route on exactly pattern, or nil.
func (t table) byPattern(pattern string) *route {
	for _, r := range t {
		if r.pattern == pattern {
			return r
		}
	}
	return nil
}

// match returns the most specific route whose pattern matches channel
// name, or nil.
func (t table) match(name string) *route {
	for _, r := range t {
		if bayeux.Match(r.pattern, name) {
			return r
		}
	}
	return nil
}

// matchSubscription returns the route a subscription to name (a channel or
// a pattern) feeds: a channel matching a route, or exactly a route's
// pattern.
func (t table) matchSubscription(name string) *route {
	for _, r := range t {
		if r.pattern == name || bayeux.Match(r.pattern, name) {
			return r
		}
	}
	return nil
}

func compileRoute(spec RouteSpec) (*route, error) {
	name, wild, ok := bayeux.ParseChannel(spec.Channel)
	if !ok {
		return nil, fmt.Errorf("route %s: invalid channel pattern", spec.Channel)
	}
	kind := bayeux.KindOf(name)
	switch spec.Type {
	case TypeCall:
		if kind != bayeux.KindService {
			return nil, fmt.Errorf("route %s: a call route needs a /service/ channel", name)
		}
	case TypeStream, TypePublish:
		if kind != bayeux.KindBroadcast {
			return nil, fmt.Errorf("route %s: a %s route needs a broadcast channel", name, spec.Type)
		}
	default:
		return nil, fmt.Errorf("route %s: unknown type %q", name, spec.Type)
	}
	if spec.Type == TypeStream && spec.Method != "" && spec.ChannelTemplate == "" && wild != bayeux.NotWild {
		return nil, fmt.Errorf("route %s: a stream from %s on a pattern needs a channelTemplate", name, spec.Method)
	}
	prefix := name
	if wild != bayeux.NotWild {
		prefix = name[:strings.LastIndexByte(name, '/')]
	}
	return &route{RouteSpec: spec, pattern: name, wild: wild, prefix: prefix}, nil
}
