package backend

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unreachable reports errors that say the backend could not be reached
// at all (as opposed to an answer, even a failing one).
func unreachable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status == 0 || he.message == msgUnavailable
	}
	return status.Code(err) == codes.Unavailable
}

// reached records the outcome of a request to b: err nil or an answer of
// the backend marks it available, an unreachable error unavailable. Each
// change is logged once: a warning when b becomes unavailable, info when
// it is available again; requests in between log nothing here.
func (b *backendConn) reached(ctx context.Context, log *slog.Logger, err error) {
	if err != nil && !unreachable(err) {
		switch status.Code(err) {
		case codes.DeadlineExceeded, codes.Canceled:
			return // no news: the backend may be slow or the caller gone
		}
	}
	down := err != nil
	if b.down.Swap(down) == down {
		return
	}
	if down {
		log.WarnContext(ctx, "backend unavailable", "backend", b.name, "err", err)
	} else {
		log.InfoContext(ctx, "backend available again", "backend", b.name)
	}
}

// Unavailable lists the backends whose last request found them
// unreachable, sorted by name.
func (r *Router) Unavailable() []string {
	var names []string
	for name, b := range r.cur.Load().backends {
		if b.down.Load() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
