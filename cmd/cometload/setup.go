package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// setupOpts paces the opening of many sessions.
type setupOpts struct {
	concurrency int     // sessions being opened at once
	rate        float64 // sessions started per second; 0 means as fast as possible
	timeout     time.Duration
}

// openAll calls open(ctx, i) for every i in [0, n), at most
// o.concurrency at a time and at most o.rate starts per second. Failures
// are recorded in errs under kind; it returns how many succeeded.
func openAll(ctx context.Context, n int, o setupOpts, errs *errorLog, kind string, open func(ctx context.Context, i int) error) int {
	var (
		next, done, failed atomic.Int64
		wg                 sync.WaitGroup
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				slog.Info("opening sessions", "done", done.Load(), "failed", failed.Load(), "of", n, "elapsed", time.Since(start).Round(time.Millisecond))
			case <-stopProgress:
				return
			}
		}
	}()
	for range max(1, min(o.concurrency, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if o.rate > 0 {
					at := start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
					if d := time.Until(at); d > 0 && !sleep(ctx, d) {
						return
					}
				}
				octx, cancel := context.WithTimeout(ctx, o.timeout)
				err := open(octx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					errs.add(kind, err.Error())
				} else {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	slog.Info("sessions open", "ok", done.Load(), "failed", failed.Load(), "took", time.Since(start).Round(time.Millisecond))
	return int(done.Load())
}

// closeAll closes every non-nil client, a bounded number at a time, within
// budget.
func closeAll(clients []Client, budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(256, max(1, len(clients))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				if c := clients[i]; c != nil {
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					c.Close(cctx)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
}
