package transport

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// closeCodes are the websocket close codes counted one by one (0: the
// socket was closed without a close frame); any other counts as "other".
var closeCodes = [...]int{0, 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1013}

// countClose counts the close of one connection with code.
func (s *handlerStats) countClose(code int) {
	for i, c := range closeCodes {
		if c == code {
			s.wsClosed[i].Add(1)
			return
		}
	}
	s.wsClosed[len(closeCodes)].Add(1)
}

// Counts are cumulative counters of a Handler, for metrics.
type Counts struct {
	// WebSocketOpened counts websocket connections upgraded.
	WebSocketOpened int64
	// WebSocketClosed counts websocket connections closed, by the close
	// code the server sent or echoed: "1000", "1001", ..., "none" for a
	// socket closed without a close frame, "other" for any other code.
	WebSocketClosed map[string]int64
	// BytesWritten counts the bytes written to clients: websocket frames
	// and long-polling and callback-polling response bodies.
	BytesWritten int64
	// BrowserLimited counts connects refused because another tab of the
	// browser already held one (MaxSessionsPerBrowser).
	BrowserLimited int64
	// TooLarge counts requests refused by MaxRequestBytes or MaxBatch.
	TooLarge int64
	// OriginRefused counts websocket upgrades and HTTP requests refused
	// for their Origin header.
	OriginRefused int64
}

// Counts returns the handler's counters. It visits every open websocket
// connection: call it when scraping, not per message.
func (h *Handler) Counts() Counts {
	c := Counts{
		WebSocketOpened: h.stats.wsOpened.Load(),
		WebSocketClosed: make(map[string]int64, len(closeCodes)+1),
		BytesWritten:    h.conns.written() + h.stats.pollBytes.Load(),
		BrowserLimited:  h.stats.browserLimited.Load(),
		TooLarge:        h.stats.tooLarge.Load(),
		OriginRefused:   h.stats.origins.total.Load(),
	}
	for i, code := range closeCodes {
		name := strconv.Itoa(code)
		if code == 0 {
			name = "none"
		}
		c.WebSocketClosed[name] = h.stats.wsClosed[i].Load()
	}
	c.WebSocketClosed["other"] = h.stats.wsClosed[len(closeCodes)].Load()
	return c
}

// refusals counts refused origins and spaces their log lines.
type refusals struct {
	total    atomic.Int64
	lastLog  atomic.Int64 // unix nanoseconds of the last log line
	reported atomic.Int64 // refusals already reported in a log line
}

// refusedOriginLogEvery spaces the log lines about refused origins.
const refusedOriginLogEvery = time.Second

// refusedOrigin counts a request refused for its Origin and logs it at
// info level, at most once per refusedOriginLogEvery, with the number of
// refusals since the previous line; the others are logged at debug level.
func (h *Handler) refusedOrigin(r *http.Request, msg string) {
	o := &h.stats.origins
	n := o.total.Add(1)
	origin := r.Header.Get("Origin")
	now := time.Now().UnixNano()
	if last := o.lastLog.Load(); now-last >= int64(refusedOriginLogEvery) && o.lastLog.CompareAndSwap(last, now) {
		prev := o.reported.Swap(n)
		h.cfg.Logger.Info(msg, "origin", origin, "remote", r.RemoteAddr, "refusedSinceLastLog", n-prev)
		return
	}
	h.cfg.Logger.Debug(msg, "origin", origin, "remote", r.RemoteAddr)
}
