package transport

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// flushers writes queued messages to websocket connections. A connection
// with something to send is appended to a shared list (a mutex and an
// append per delivery: no channel hand-off, no goroutine wake per
// subscriber); after waiting delay in the list, so that messages queued
// meanwhile share one frame and one system call, it is flushed by a worker.
// A connection woken for something urgent (a reply meant for its session
// alone, or the end of a held connect) goes on a second list that workers
// serve first and without the wait: batching gains nothing there, and the
// wait would add to every remote call's round trip.
//
// Workers drain the lists in chunks and exit as soon as they are empty, so
// an idle gateway has none. A new worker starts whenever more connections
// wait than workers run (up to maxWorkers), so a slow client only delays
// the few connections its worker took with it.
type flushers struct {
	delay   time.Duration // how long a connection waits so that messages share its frame
	mu      sync.Mutex    // guards pending, since, urgent, running
	pending []*wsConn
	since   []time.Time // when each pending connection was added
	urgent  []*wsConn
	running int
}

const (
	// maxWorkers bounds concurrent flushes. Workers only exist while
	// connections wait, so the bound matters only when many clients are
	// slow: each can hold a worker for up to the write timeout.
	maxWorkers = 1024
	// flushChunk is how many connections a worker takes at a time: it
	// amortizes the lock, and a slow client delays at most flushChunk-1
	// others.
	flushChunk = 8
)

func (f *flushers) run(c *wsConn, urgent bool) {
	f.mu.Lock()
	if urgent {
		f.urgent = append(f.urgent, c)
	} else {
		f.pending = append(f.pending, c)
		f.since = append(f.since, time.Now())
	}
	start := f.running < maxWorkers && f.running < len(f.pending)+len(f.urgent)
	if start {
		f.running++
	}
	f.mu.Unlock()
	if start {
		go f.work()
	}
}

func (f *flushers) work() {
	var chunk [flushChunk]*wsConn
	for {
		f.mu.Lock()
		n, wait := f.takeLocked(chunk[:])
		if wait > 0 {
			f.mu.Unlock()
			time.Sleep(wait)
			continue
		}
		if n == 0 {
			f.running--
			if cap(f.pending) > 4096 {
				f.pending, f.since = nil, nil // give back what a burst grew
			}
			if cap(f.urgent) > 4096 {
				f.urgent = nil
			}
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		for i, c := range chunk[:n] {
			safeFlush(c)
			chunk[i] = nil
		}
	}
}

// takeLocked moves up to len(chunk) connections that are due into chunk,
// urgent ones first, and returns how many; or, if connections wait but none
// is due yet, the time until the first is.
func (f *flushers) takeLocked(chunk []*wsConn) (int, time.Duration) {
	if len(f.urgent) > 0 {
		n := copy(chunk, f.urgent)
		rest := copy(f.urgent, f.urgent[n:])
		clear(f.urgent[rest:])
		f.urgent = f.urgent[:rest]
		return n, 0
	}
	if len(f.pending) == 0 {
		return 0, 0
	}
	if wait := f.delay - time.Since(f.since[0]); wait > 0 {
		return 0, wait
	}
	n := copy(chunk, f.pending)
	rest := copy(f.pending, f.pending[n:])
	clear(f.pending[rest:])
	f.pending = f.pending[:rest]
	copy(f.since, f.since[n:])
	f.since = f.since[:rest]
	return n, 0
}

// safeFlush flushes c; a panic (a bug, or a faulty extension run while
// completing a connect) closes that connection and spares the node.
func safeFlush(c *wsConn) {
	defer func() {
		if p := recover(); p != nil {
			c.h.cfg.Logger.Error("panic while writing to a websocket", "remote", c.client.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
		}
	}()
	c.flush()
}
