//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"errors"
	"syscall"
	"unsafe"
)

// fionread is FIONREAD (SIOCINQ) in the generic ioctl numbering these
// architectures share.
const fionread = 0x541B

// sockState reads, without reading from it, how many received bytes wait
// in a TCP socket's receive queue and the socket's TCP state
// (tcp_info.tcpi_state): a RST, or a FIN once the data before it has
// arrived, changes the state even while nobody reads.
func sockState(rc syscall.RawConn) (queued int, state uint8, err error) {
	cerr := rc.Control(func(fd uintptr) {
		var n int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, fionread, uintptr(unsafe.Pointer(&n))); e != 0 {
			err = e
			return
		}
		var info syscall.TCPInfo
		l := uint32(unsafe.Sizeof(info))
		if _, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
			err = e
			return
		}
		queued, state = int(n), info.State
	})
	return queued, state, errors.Join(cerr, err)
}
