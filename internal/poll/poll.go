// Package poll waits in tests for a condition that other goroutines make
// true. It imports nothing of the project, so every package's tests can
// use it (gatewaytest cannot be imported by the packages the gateway
// itself imports).
package poll

import (
	"testing"
	"time"
)

// Eventually calls fn every few milliseconds until it returns nil, and
// fails t with fn's last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
