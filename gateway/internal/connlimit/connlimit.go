// Package connlimit bounds how many connections one remote address may
// hold open on a listener, so that one host cannot take every descriptor
// of the node.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// refusal is what a refused connection is sent before it is closed: an
// HTTP answer (the listener serves HTTP), written once without waiting.
var refusal = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 29\r\n\r\ntoo many connections from you")

// Listener wraps a net.Listener: Accept refuses (answers 503 and closes)
// a connection whose remote IP already holds the maximum of open ones,
// counts it and logs at most one line a second about refusals. The
// maximum may be changed with SetMax while it accepts.
type Listener struct {
	net.Listener
	max atomic.Int64 // <= 0: unlimited
	log *slog.Logger

	mu   sync.Mutex     // guards open
	open map[string]int // remote IP -> open connections

	refused  atomic.Int64
	lastLog  atomic.Int64 // unix nanoseconds of the last refusal log line
	reported atomic.Int64 // refusals already reported in a log line
}

// New returns ln limited to max open connections per remote IP; max <= 0
// means unlimited (until SetMax sets a limit).
func New(ln net.Listener, max int, log *slog.Logger) *Listener {
	l := &Listener{Listener: ln, log: log, open: make(map[string]int)}
	l.max.Store(int64(max))
	return l
}

// SetMax changes the limit for the connections accepted from now on;
// max <= 0 means unlimited. Open connections are kept. Connections
// accepted while unlimited are not counted against a limit set later.
func (l *Listener) SetMax(max int) { l.max.Store(int64(max)) }

// Accept returns the next connection within the limit.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		max := int(l.max.Load())
		if max <= 0 {
			return c, nil
		}
		ip := remoteIP(c)
		l.mu.Lock()
		ok := l.open[ip] < max
		if ok {
			l.open[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &conn{Conn: c, l: l, ip: ip}, nil
		}
		l.refuse(c, ip, max)
	}
}

// Refused returns how many connections were refused.
func (l *Listener) Refused() int64 { return l.refused.Load() }

func (l *Listener) refuse(c net.Conn, ip string, max int) {
	n := l.refused.Add(1)
	// A short deadline: the answer is a courtesy, never a wait.
	c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	c.Write(refusal)
	c.Close()
	now := time.Now().UnixNano()
	if last := l.lastLog.Load(); now-last >= int64(time.Second) && l.lastLog.CompareAndSwap(last, now) {
		prev := l.reported.Swap(n)
		l.log.Warn("connection refused: too many from one address", "remote", ip, "maxConnectionsPerAddress", max, "refusedSinceLastLog", n-prev)
	}
}

func (l *Listener) release(ip string) {
	l.mu.Lock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
	l.mu.Unlock()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// conn releases its place when closed (once).
type conn struct {
	net.Conn
	l    *Listener
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// NetConn returns the wrapped connection, for code that needs the
// concrete type (the websocket transport writes to the TCP socket
// directly).
func (c *conn) NetConn() net.Conn { return c.Conn }
