package transport

import (
	"errors"
	"sync"
	"syscall"
)

// poller watches idle websocket connections with one epoll instance, so
// that an idle connection needs no reader goroutine (and no stack). Each
// connection is registered one-shot: when it becomes readable, a
// short-lived goroutine reads and processes what arrived, then re-arms it.
type poller struct {
	epfd  int
	wake  [2]int     // pipe: a byte on wake[1] stops the loop
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
	p := &poller{epfd: fd, conns: make(map[int]*wsConn)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(fd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		return nil, err
	}
	go p.loop()
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

// close stops the loop, which closes the descriptors itself: closing an
// epoll descriptor does not wake a thread waiting on it, and a new poller
// could get the same descriptor number while the old loop still uses it.
func (p *poller) close() {
	p.once.Do(func() { syscall.Write(p.wake[1], []byte{0}) })
}

func (p *poller) loop() {
	defer func() {
		syscall.Close(p.epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
	}()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.wake[0] {
				return
			}
			p.mu.Lock()
			c := p.conns[int(ev.Fd)]
			p.mu.Unlock()
			if c != nil {
				c.readable()
			}
		}
	}
}
