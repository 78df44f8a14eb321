package transport

import "time"

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
		c.flush()
		t.Reset(f.idle)
		select {
		case c = <-f.work:
		case <-t.C:
			return
		}
	}
}
