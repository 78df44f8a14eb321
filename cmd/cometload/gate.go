package main

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// readGate lets a scenario stop a websocket client's reader between
// frames (the slow scenario's paused subscribers): while the gate is shut
// nothing is read from the socket, so what the server sends piles up in
// the kernel's buffers on both sides. It opens once, for the end of the
// run: the reader then drains the socket to its end, each frame allowing
// it idle more time. Its methods are safe for concurrent use, and those of
// a nil gate do nothing.
type readGate struct {
	mu    sync.Mutex    // guards open, shut, drain, idle
	open  chan struct{} // closed while the reader may read
	shut  bool
	drain bool          // opened for the end: the connect loop stops
	idle  time.Duration // read deadline before each frame while draining; 0: none
}

func newReadGate() *readGate {
	g := &readGate{open: make(chan struct{})}
	close(g.open)
	return g
}

// pause shuts the gate: the reader stops before its next frame.
func (g *readGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut || g.drain {
		return
	}
	g.shut, g.open = true, make(chan struct{})
}

// resume opens the gate for good, for the reader to drain the socket;
// with idle > 0 the reader gives up once no frame has come for idle.
func (g *readGate) resume(idle time.Duration) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.drain {
		return
	}
	g.drain, g.idle = true, idle
	if g.shut {
		g.shut = false
		close(g.open)
	}
}

// wait blocks while the gate is shut; the reader calls it before each
// frame. While draining with an idle limit, it moves conn's read deadline.
func (g *readGate) wait(conn *websocket.Conn) {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	<-ch
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle > 0 {
		conn.SetReadDeadline(time.Now().Add(idle))
	}
}

// draining reports whether the gate was opened for the end of the run.
func (g *readGate) draining() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.drain
}
