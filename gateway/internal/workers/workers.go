// Package workers runs short functions on goroutines that are reused
// while work keeps coming and exit when it stops.
package workers

import (
	"sync/atomic"
	"time"
)

// idleFor is how long an idle worker waits for the next function before
// it exits.
const idleFor = time.Second

// Pool runs functions on goroutines that outlive one function: a function
// goes to an idle worker if one is waiting, else to a new goroutine, and a
// worker with nothing to do for a second exits, so an idle gateway has
// none. Reuse keeps a worker's grown stack: decoding a frame or making a
// gRPC call needs several kilobytes of stack, and growing a new
// goroutine's stack to that size for every frame or call costs a tenth of
// the CPU under load (runtime.newstack in the profiles).
//
// A Pool does not bound its workers: callers bound the work they submit.
type Pool struct {
	done <-chan struct{} // closed: workers exit when idle
	idle chan func()     // unbuffered: a send succeeds only if a worker waits
	made atomic.Int64
}

// New returns a pool whose idle workers exit at once when done is closed
// (nil: never closed).
func New(done <-chan struct{}) *Pool {
	return &Pool{done: done, idle: make(chan func())}
}

// Go runs fn on a worker. It never blocks.
func (p *Pool) Go(fn func()) {
	select {
	case p.idle <- fn:
	default:
		p.made.Add(1)
		go p.loop(fn)
	}
}

// Started returns how many workers the pool has started in all.
func (p *Pool) Started() int64 { return p.made.Load() }

func (p *Pool) loop(fn func()) {
	fn()
	t := time.NewTimer(idleFor)
	defer t.Stop()
	for {
		select {
		case fn := <-p.idle:
			fn()
			t.Reset(idleFor)
		case <-t.C:
			return
		case <-p.done:
			return
		}
	}
}
