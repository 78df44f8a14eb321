package workers

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestReuseAndExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(ctx.Done())
	base := runtime.NumGoroutine()
	// Calls one after another share a worker (give it a moment to wait
	// again: a call that comes before that starts another).
	for range 100 {
		done := make(chan struct{})
		w.Go(func() { close(done) })
		<-done
		time.Sleep(2 * time.Millisecond)
	}
	// Without reuse it would be 100; a loaded machine can make a worker
	// miss a call now and then.
	if n := w.Started(); n > 90 {
		t.Errorf("%d workers started for 100 calls in a row; want them reused", n)
	}
	// Concurrent calls each get a worker.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 5 {
		wg.Add(1)
		w.Go(func() { defer wg.Done(); <-release })
	}
	if n := runtime.NumGoroutine(); n < base+5 {
		t.Errorf("%d goroutines for 5 concurrent calls (base %d)", n, base)
	}
	close(release)
	wg.Wait()
	if n := w.Started(); n < 5 {
		t.Errorf("%d workers started in all; want at least 5", n)
	}
	cancel()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("condition not met after 5s (%d goroutines)", runtime.NumGoroutine())
		}
	}
}
