package transport

import (
	"runtime/debug"
	"time"

	"github.com/gorilla/websocket"
)

// flushers runs connection flushes on warm goroutines: a connection with
// something to send is handed to an idle worker over a channel (no
// allocation per delivery, unlike a go statement with arguments), or to a
// new worker when none is idle, so a slow client only ever holds its own
// worker. Workers exit after idle without work: an idle gateway has none.
type flushers struct {
	work chan *wsConn // unbuffered: a send succeeds only to a waiting worker
	idle time.Duration
}

func (f *flushers) run(c *wsConn) {
	select {
	case f.work <- c:
	default:
		go f.worker(c)
	}
}

func (f *flushers) worker(c *wsConn) {
	t := time.NewTimer(f.idle)
	defer t.Stop()
	for {
		safeFlush(c)
		t.Reset(f.idle)
		select {
		case c = <-f.work:
		case <-t.C:
			return
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
