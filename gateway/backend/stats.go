package backend

import (
	"sort"
	"time"
)

// BackendState describes one backend of the routing in force, for the
// status page.
type BackendState struct {
	Name     string
	Kind     string // "grpc" or "http"
	Required bool   // backends.*.required
	// State is the gRPC connection's state ("IDLE", "CONNECTING",
	// "READY", "TRANSIENT_FAILURE", "SHUTDOWN"); empty for an HTTP
	// backend, which keeps no connection state.
	State string
	// Calls counts the remote calls (channel routes of type call) that
	// finished, retries included in one call; Failures, those that failed;
	// CallTime is their total duration. A reload that replaces the backend
	// starts them again from 0.
	Calls, Failures int64
	CallTime        time.Duration
}

// Backends returns the state of every backend now in force, sorted by
// name. It reads atomics only and may be called concurrently.
func (r *Router) Backends() []BackendState {
	g := r.cur.Load()
	out := make([]BackendState, 0, len(g.backends))
	for name, b := range g.backends {
		st := BackendState{
			Name: name, Kind: "http", Required: b.spec.Required,
			Calls: b.calls.Load(), Failures: b.failures.Load(), CallTime: time.Duration(b.callNanos.Load()),
		}
		if b.grpc != nil {
			st.Kind = "grpc"
			st.State = b.grpc.GetState().String()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// countCall records one finished remote call that started at start and
// ended with *err.
func (b *backendConn) countCall(start time.Time, err *error) {
	b.callNanos.Add(int64(time.Since(start)))
	b.calls.Add(1)
	if *err != nil {
		b.failures.Add(1)
	}
}
