package transport

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// handshakeClock closes websocket connections that have not handshaken a
// session within HandshakeTimeout, and then forgets the browser id made for
// the connection's upgrade (Handler.minted). Since the timeout is the same for all,
// connections join a FIFO in the order they upgrade and one goroutine,
// running only while the FIFO is not empty, wakes at the oldest deadline:
// a new connection costs an append, not a runtime timer of its own.
type handshakeClock struct {
	timeout time.Duration
	mu      sync.Mutex // guards queue, running
	queue   []handshakeDue
	running bool
}

type handshakeDue struct {
	c      *wsConn
	at     time.Time
	minted string // browser id made for c's upgrade, if remembered
}

// watch starts c's clock; minted is the browser id made for its upgrade
// and remembered in Handler.minted, or "".
func (k *handshakeClock) watch(c *wsConn, minted string) {
	k.mu.Lock()
	k.queue = append(k.queue, handshakeDue{c, time.Now().Add(k.timeout), minted})
	start := !k.running
	k.running = true
	k.mu.Unlock()
	if start {
		go k.run()
	}
}

func (k *handshakeClock) run() {
	var due []handshakeDue
	for {
		k.mu.Lock()
		now := time.Now()
		n := 0
		for n < len(k.queue) && !k.queue[n].at.After(now) {
			due = append(due, k.queue[n])
			n++
		}
		rest := copy(k.queue, k.queue[n:])
		clear(k.queue[rest:])
		k.queue = k.queue[:rest]
		var wait time.Duration
		if rest == 0 {
			k.running = false
			if cap(k.queue) > 4096 {
				k.queue = nil // give back what a burst grew
			}
		} else {
			wait = k.queue[0].at.Sub(now)
		}
		k.mu.Unlock()
		for i, d := range due {
			if d.minted != "" {
				d.c.h.minted.forget(d.minted)
			}
			d.c.handshakeExpired()
			due[i] = handshakeDue{}
		}
		due = due[:0]
		if rest == 0 {
			return
		}
		time.Sleep(wait)
	}
}

// handshakeExpired closes c unless a session is bound to it by now.
func (c *wsConn) handshakeExpired() {
	if c.bound.Load() != nil || c.everBound.Load() || c.closed.Load() {
		return
	}
	c.h.stats.handshakeTimeouts.Add(1)
	c.h.cfg.Logger.Debug("websocket closed: no handshake in time", "remote", c.client.RemoteAddr, "handshakeTimeout", c.h.cfg.WebSocket.HandshakeTimeout)
	c.closeWith(websocket.ClosePolicyViolation, "no handshake")
}
