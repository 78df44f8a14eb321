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
// Workers drain the list in chunks and exit as soon as it is empty, so an
// idle gateway has none. A new worker starts whenever more connections
// wait than workers run (up to maxWorkers), so a slow client only delays
// the few connections its worker took with it.
type flushers struct {
	delay   time.Duration // how long a connection waits so that messages share its frame
	mu      sync.Mutex    // guards pending, since, running
	pending []*wsConn
	since   []time.Time // when each pending connection was added
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

func (f *flushers) run(c *wsConn) {
	f.mu.Lock()
	f.pending = append(f.pending, c)
	f.since = append(f.since, time.Now())
	start := f.running < maxWorkers && f.running < len(f.pending)
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
		if len(f.pending) > 0 {
			if wait := f.delay - time.Since(f.since[0]); wait > 0 {
				f.mu.Unlock()
				time.Sleep(wait)
				continue
			}
		}
		n := copy(chunk[:], f.pending)
		if n == 0 {
			f.running--
			if cap(f.pending) > 4096 {
				f.pending = nil // give back what a burst grew
			}
			f.mu.Unlock()
			return
		}
		rest := copy(f.pending, f.pending[n:])
		clear(f.pending[rest:])
		f.pending = f.pending[:rest]
		copy(f.since, f.since[n:])
		f.since = f.since[:rest]
		f.mu.Unlock()
		for i, c := range chunk[:n] {
			safeFlush(c)
			chunk[i] = nil
		}
	}
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
