//go:build !linux || !(amd64 || arm64 || riscv64 || loong64)

package main

import (
	"errors"
	"syscall"
)

// sockState is only implemented on Linux (see sockstate_linux.go); here
// the slow scenario's paused sockets are not watched.
func sockState(syscall.RawConn) (queued int, state uint8, err error) {
	return 0, 0, errors.New("socket state: not supported on this platform")
}
