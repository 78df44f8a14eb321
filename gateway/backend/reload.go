package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// ErrClosed is returned by Reload on a Router that is closed or not
// started.
var ErrClosed = errors.New("backend: router not running")

// Reload replaces the backends and routes with those of cfg while the
// router runs (cfg.Logger and cfg.MaxCallsPerSession are ignored: New's
// stay). Backends whose settings are unchanged keep their connection, and
// routes whose settings and backend are unchanged keep their open streams.
// New connections are created before the old routing is replaced; calls
// and publish hooks in flight finish on the connection they started on,
// which is closed after the last of them. Streams whose route changed or
// went are cancelled, and their subscribers' channels are fed by the route
// now matching them, if any. Channels already subscribed when a stream
// route is added get their stream at once.
//
// If cfg is invalid, or a new route's method cannot be resolved within
// ctx, nothing changes and the error is returned. On success Reload
// returns one line per change ("backend b added", "route call
// /service/x changed"), empty when nothing changed. Reloads are
// serialised; Reload may be called concurrently with everything else.
func (r *Router) Reload(ctx context.Context, cfg Config) ([]string, error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if r.e == nil || r.ctx.Err() != nil {
		return nil, ErrClosed
	}
	old := r.cur.Load()
	g, dialled, err := build(cfg, old)
	if err != nil {
		return nil, err
	}
	abandon := func(err error) ([]string, error) {
		for _, b := range dialled {
			b.close()
		}
		return nil, err
	}
	if err := resolve(ctx, g); err != nil {
		return abandon(err)
	}
	if err := r.install(g); err != nil {
		return abandon(err)
	}
	connectRequired(g)

	// Channels subscribed while no stream route matched them, which a new
	// route may now feed; read before r.mu, a leaf lock.
	var unfed []string
	var counts []int
	if len(g.streams) > 0 {
		for _, ci := range r.e.Channels() {
			if ci.Subscribers > 0 && old.streams.matchSubscription(ci.Name) == nil && g.streams.matchSubscription(ci.Name) != nil {
				unfed = append(unfed, ci.Name)
				counts = append(counts, ci.Subscribers)
			}
		}
	}
	r.mu.Lock()
	moved := map[string]int{}
	for key, st := range r.open {
		kept := true
		for ch := range st.channels {
			if g.streams.matchSubscription(ch) != key.rt {
				kept = false
				break
			}
		}
		if kept {
			continue
		}
		st.cancel()
		delete(r.open, key)
		for ch, n := range st.channels {
			moved[ch] += n
		}
	}
	r.cur.Store(g)
	for ch, n := range moved {
		r.subscribedLocked(ch, n)
	}
	for i, ch := range unfed {
		r.subscribedLocked(ch, counts[i])
	}
	r.mu.Unlock()

	// Retire the replaced connections; forget those already closed.
	r.retired = slices.DeleteFunc(r.retired, func(b *backendConn) bool { return b.users.Load() == 0 })
	for name, b := range old.backends {
		if g.backends[name] != b {
			b.retire()
			r.retired = append(r.retired, b)
		}
	}
	return changes(old, g), nil
}

// changes describes what differs between routing generations a and b.
func changes(a, b *routing) []string {
	var out []string
	for name, nb := range b.backends {
		switch ob := a.backends[name]; {
		case ob == nil:
			out = append(out, fmt.Sprintf("backend %s added", name))
		case ob != nb:
			out = append(out, fmt.Sprintf("backend %s changed", name))
		}
	}
	for name := range a.backends {
		if b.backends[name] == nil {
			out = append(out, fmt.Sprintf("backend %s removed", name))
		}
	}
	for _, typ := range []string{TypeCall, TypeStream, TypePublish} {
		ot, nt := a.table(typ), b.table(typ)
		for _, rt := range nt {
			switch o := ot.byPattern(rt.pattern); {
			case o == nil:
				out = append(out, fmt.Sprintf("route %s %s added", typ, rt.pattern))
			case o != rt:
				out = append(out, fmt.Sprintf("route %s %s changed", typ, rt.pattern))
			}
		}
		for _, rt := range ot {
			if nt.byPattern(rt.pattern) == nil {
				out = append(out, fmt.Sprintf("route %s %s removed", typ, rt.pattern))
			}
		}
	}
	if (a.auth == nil) != (b.auth == nil) || (a.auth != nil && a.auth.name != b.auth.name) || a.authWait != b.authWait {
		out = append(out, "auth changed")
	}
	sort.Strings(out)
	return out
}

// Unreachable returns the names of the backends marked required whose
// connection is not ready (connecting, or failing), sorted; empty when all
// are ready.
func (r *Router) Unreachable() []string {
	var out []string
	for name, b := range r.cur.Load().backends {
		if b.spec.Required && !b.reachable() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
