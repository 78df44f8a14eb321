package transport

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// poller watches idle websocket connections with one epoll instance, so
// that an idle connection needs no reader goroutine (and no stack). Each
// connection is registered one-shot: when it becomes readable, a worker
// reads and processes what arrived, then re-arms it.
//
// The epoll descriptor is itself registered with the Go runtime's network
// poller (an epoll instance is readable when it has events), so the loop
// waits parked like any network read instead of blocking a thread in
// epoll_wait: a goroutine blocked in a system call keeps its P until the
// runtime's monitor takes it back, which stalls a GOMAXPROCS=1 process for
// 20 µs or more every time the loop waits.
type poller struct {
	epfd  int
	file  *os.File   // epfd, as the runtime polls it; Close stops the loop
	mu    sync.Mutex // guards conns
	conns map[int]*wsConn
	once  sync.Once
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	p := &poller{epfd: fd, file: os.NewFile(uintptr(fd), "epoll"), conns: make(map[int]*wsConn)}
	// Only a descriptor the runtime polls accepts a deadline: without
	// that, the loop could not wait, and the caller falls back to reader
	// goroutines.
	if err := p.file.SetReadDeadline(time.Time{}); err != nil {
		p.file.Close()
		return nil, fmt.Errorf("epoll descriptor not pollable by the runtime: %w", err)
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, err
	}
	go p.loop(rc)
	return p, nil
}

// add starts watching c's socket.
func (p *poller) add(c *wsConn) error {
	p.mu.Lock()
	p.conns[c.fd] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.forget(c)
		return err
	}
	return nil
}

// rearm watches c again after a read.
func (p *poller) rearm(c *wsConn) error {
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(c.fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
}

// remove stops watching c. It must run before c's socket is closed, or the
// descriptor could be reused by a new connection whose registration this
// would remove.
func (p *poller) remove(c *wsConn) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	p.forget(c)
}

func (p *poller) forget(c *wsConn) {
	p.mu.Lock()
	if p.conns[c.fd] == c {
		delete(p.conns, c.fd)
	}
	p.mu.Unlock()
}

// close stops the loop. The descriptor is closed once the loop's pending
// wait has returned (os.File counts its users), so a new poller cannot get
// the same number while the old loop still uses it.
func (p *poller) close() {
	p.once.Do(func() { p.file.Close() })
}

func (p *poller) loop(rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), events, 0)
			if werr == syscall.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // false: park until epfd is readable
		})
		if err != nil || werr != nil {
			return // closed
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.conns[int(ev.Fd)]
			p.mu.Unlock()
			if c != nil {
				c.readable()
			}
		}
	}
}
