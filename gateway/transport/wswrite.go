package transport

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The write side of a websocket connection.
//
// Nothing that serves more than one connection (a flush worker, a frame
// worker, a timer) ever waits on one connection's socket. Under the
// connection's write lock, a frame is offered to the socket with one
// non-blocking write; what the socket does not take at once waits in the
// connection's pending bytes (out), and a goroutine of that connection
// alone (drain) waits for the socket to accept them, outside the lock.
// While it does, the connection is stalled: flushes leave queued messages
// in the session's queue, whose bounds (engine MaxQueue, MaxQueueBytes)
// then cut off the session as slow; replies to the client's own requests
// join the pending bytes, bounded by MaxPendingBytes; and a drain that
// makes no progress for WriteTimeout ends the connection. A connection
// that cannot be written without blocking (TLS) always writes through
// drain.
//
// All frames are framed by this package, control frames and compressed
// frames included; the websocket library only reads.

// drainChunk is the most one blocking write of drain hands to the socket,
// so that WriteTimeout bounds the time without progress, not the time to
// write everything pending.
const drainChunk = 64 << 10

// maxControlPayload bounds a control frame's payload (RFC 6455 §5.5).
const maxControlPayload = 125

// writeLocked sends buf, a JSON payload after frameHeaderRoom reserved
// bytes, as one text frame; the caller holds wmu. It reports false when
// the connection is closed or was cut off.
func (c *wsConn) writeLocked(buf []byte) bool {
	if c.closed.Load() {
		return false
	}
	if c.compress {
		d := deflaters.Get().(*deflater)
		defer deflaters.Put(d)
		return c.sendLocked(d.frame(buf[frameHeaderRoom:]))
	}
	return c.sendLocked(textFrame(buf))
}

// sendLocked writes frame, complete wire bytes, or as much as the socket
// takes now, and keeps the rest for drain; the caller holds wmu and frame
// may be reused once it returns.
func (c *wsConn) sendLocked(frame []byte) bool {
	if c.sockClosed {
		return false
	}
	c.written.Add(int64(len(frame)))
	if c.stalled.Load() {
		if limit := c.h.cfg.WebSocket.MaxPendingBytes; len(c.out)+len(frame) > limit {
			c.h.stats.slowClosed.Add(1)
			c.h.cfg.Logger.Info("websocket client too slow: pending bytes over the limit", "remote", c.client.RemoteAddr, "maxPendingBytes", limit)
			c.abortLocked(websocket.ClosePolicyViolation, "slow client")
			return false
		}
		c.out = append(c.out, frame...)
		return true
	}
	n := 0
	if c.raw != nil {
		var err error
		if n, err = c.tryWrite(frame); err != nil {
			c.h.cfg.Logger.Debug("websocket write failed", "remote", c.client.RemoteAddr, "err", err)
			c.abortLocked(0, "")
			return false
		}
		if n == len(frame) {
			return true
		}
	}
	c.out = append(c.out[:0], frame[n:]...)
	c.stalled.Store(true)
	go c.drain()
	return true
}

// tryWrite writes what the socket takes of b without waiting.
func (c *wsConn) tryWrite(b []byte) (int, error) {
	var n int
	var err error
	rerr := c.raw.Write(func(fd uintptr) bool {
		for {
			n, err = syscall.Write(int(fd), b)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN:
		return 0, nil
	case err != nil:
		return 0, err
	}
	return n, nil
}

// drain writes the pending bytes on the connection's own goroutine,
// waiting for the socket as long as it makes progress, then flushes what
// the session queued meanwhile.
func (c *wsConn) drain() {
	conn := c.conn
	wt := c.h.cfg.WebSocket.WriteTimeout
	var spare []byte
	for {
		c.wmu.Lock()
		if c.sockClosed {
			c.wmu.Unlock()
			return
		}
		if len(c.out) == 0 {
			if c.closeWhenDrained {
				c.shutLocked()
				c.wmu.Unlock()
				return
			}
			if cap(c.out) > drainChunk {
				c.out = nil // an idle connection keeps no large buffer
			}
			c.stalled.Store(false)
			c.wmu.Unlock()
			break
		}
		pending := c.out
		c.out = spare[:0]
		c.wmu.Unlock()
		for b := pending; len(b) > 0; {
			conn.SetWriteDeadline(time.Now().Add(wt))
			n, err := conn.Write(b[:min(len(b), drainChunk)])
			b = b[n:]
			if err != nil {
				c.wmu.Lock()
				if !c.sockClosed {
					if isTimeout(err) {
						c.h.stats.slowClosed.Add(1)
						c.h.cfg.Logger.Info("websocket client too slow: no write progress", "remote", c.client.RemoteAddr, "writeTimeout", wt)
					} else {
						c.h.cfg.Logger.Debug("websocket write failed", "remote", c.client.RemoteAddr, "err", err)
					}
					c.abortLocked(0, "")
				}
				c.wmu.Unlock()
				return
			}
		}
		spare = pending
	}
	if c.raw != nil {
		conn.SetWriteDeadline(time.Time{}) // tryWrite must not see a passed deadline
	}
	safeFlush(c)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeLocked ends the connection: what is pending is written first, then
// a close frame with code and reason, and the socket is closed. Code 0
// closes at once, dropping what is pending. The caller holds wmu; it is
// idempotent.
func (c *wsConn) closeLocked(code int, reason string) {
	if code == 0 {
		c.abortLocked(0, "")
		return
	}
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.h.stats.countClose(code)
	frame := closeFrame(code, reason)
	if c.stalled.Load() || c.raw == nil {
		// drain writes the frame after what is pending, then closes.
		c.closeWhenDrained = true
		if !c.stalled.Load() {
			c.sendLocked(frame)
			return
		}
		c.out = append(c.out, frame...)
		return
	}
	c.tryWrite(frame) // best effort: the socket is closed right after
	c.shutLocked()
}

// abortLocked closes the socket at once, dropping what is pending, after
// offering a close frame with code (0: none) if the socket takes it now.
// The caller holds wmu.
func (c *wsConn) abortLocked(code int, reason string) {
	if !c.closed.Swap(true) {
		c.h.stats.countClose(code)
	}
	if c.sockClosed {
		return
	}
	if code != 0 && c.raw != nil && !c.stalled.Load() {
		c.tryWrite(closeFrame(code, reason))
	}
	c.out = nil
	c.shutLocked()
}

// shutLocked closes the socket; the caller holds wmu.
func (c *wsConn) shutLocked() {
	if c.sockClosed {
		return
	}
	c.sockClosed = true
	c.closed.Store(true)
	if c.polled {
		// Stop watching before the descriptor can be reused, and clean up:
		// no reader goroutine will notice the close.
		c.h.poller.remove(c)
		go c.finish()
	}
	c.ws.Close()
}

// controlFrame returns an unmasked control frame (RFC 6455 §5.5) of
// opcode op; payload is cut to 125 bytes.
func controlFrame(op byte, payload []byte) []byte {
	payload = payload[:min(len(payload), maxControlPayload)]
	f := make([]byte, 2, 2+len(payload))
	f[0], f[1] = 0x80|op, byte(len(payload))
	return append(f, payload...)
}

// closeFrame returns a close frame with code and reason (cut to fit, on a
// UTF-8 boundary).
func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	for len(reason) > maxControlPayload-2 {
		reason = reason[:len(reason)-1]
	}
	return controlFrame(0x8, append(p, reason...))
}

// deflater compresses frames for permessage-deflate without context
// takeover (RFC 7692), the only mode the websocket library negotiates.
type deflater struct {
	w   *flate.Writer
	buf bytes.Buffer
}

// deflaters are pooled: a flate.Writer holds several hundred kilobytes.
var deflaters = sync.Pool{New: func() any {
	d := new(deflater)
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}}

// frame returns payload as one compressed text frame, valid until the
// next call.
func (d *deflater) frame(payload []byte) []byte {
	d.buf.Reset()
	d.buf.Write(make([]byte, frameHeaderRoom))
	d.w.Reset(&d.buf)
	d.w.Write(payload)
	d.w.Flush()
	b := d.buf.Bytes()
	b = b[:len(b)-4] // the empty stored block's 00 00 ff ff (RFC 7692 §7.2.1)
	f := textFrame(b)
	f[0] |= 0x40 // RSV1: compressed
	return f
}
