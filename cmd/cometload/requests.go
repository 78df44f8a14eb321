package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// measureRequests runs, during the measurement window, one request loop
// for each of the k clients for which request(i) is not nil: each loop
// sends one request at a time on its own schedule (cfg.callRate in all,
// see schedule; 0: a closed loop) and waits for its answer, whose round
// trip is the latency recorded. do's n counts the loop's requests. A
// failed request is counted under errKind. The report's sent, delivered
// (answered) and lost counts are set from the requests.
func measureRequests(ctx context.Context, r *run, k int, request func(i int) func(ctx context.Context, n int) error, errKind string) {
	cfg, st := r.cfg, r.stats
	var sent, answered atomic.Int64
	r.measure(ctx, func(ctx context.Context, end time.Time) {
		var wg sync.WaitGroup
		for i := range k {
			do := request(i)
			if do == nil {
				continue
			}
			wg.Go(func() {
				sched := newSchedule(time.Now(), cfg.callRate, k, i)
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					if d := sched.wait(time.Now()); d > 0 {
						sleep(ctx, d)
					}
					cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
					t0 := sched.start(time.Now())
					sent.Add(1)
					err := do(cctx, n)
					cancel()
					t1 := time.Now()
					if err != nil {
						st.errs.add(errKind, err.Error())
						sleep(ctx, 10*time.Millisecond)
						continue
					}
					answered.Add(1)
					ws, we := st.window()
					if ns := t0.UnixNano(); ns >= ws && ns < we {
						st.recordLatency(i, t1.Sub(t0))
					}
					if ns := t1.UnixNano(); ns >= ws && ns < we {
						st.inWindow.Add(1)
					}
				}
			})
		}
		wg.Wait()
	})
	r.report.Sent, r.report.Delivered = sent.Load(), answered.Load()
	r.report.Expected = r.report.Sent
	r.report.Lost = r.report.Sent - r.report.Delivered
}
