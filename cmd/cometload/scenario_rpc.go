package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runRPC: K sessions, each with one remote call in flight at a time on a
// service channel (-channel, default /service/echo). The latency is the
// round trip from the publish to the answer with the same id.
//
// With -call-rate R, each session calls on its own schedule, R/K times a
// second (the sessions' schedules staggered), and a call's latency runs
// from its scheduled time when the call before it made it late, not from
// when it was sent: that wait counts, so a server that falls behind shows
// it (no coordinated omission). A call on time is timed from when it is
// sent, so that the tool's own timer slack is not counted. Below saturation, the
// difference between two servers' latencies at the same R is what one adds
// to a call; a closed loop (R = 0) measures throughput instead, and its
// latency is K divided by it.
func runRPC(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	channel := cfg.channel
	if channel == "" {
		channel = "/service/echo"
	}
	k := cfg.concurrency
	clients := make([]Client, k)
	defer func() { closeAll(clients, 20*time.Second) }()
	setup := time.Now()
	r.report.Clients = openAll(ctx, k, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		c := r.env.newClient(clientOpts{index: i})
		if err := c.Open(ctx); err != nil {
			return err
		}
		clients[i] = c
		return nil
	})
	r.report.SetupS = seconds(time.Since(setup))

	var sent, answered atomic.Int64
	r.measure(ctx, func(ctx context.Context, end time.Time) {
		var wg sync.WaitGroup
		for i, c := range clients {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var data []byte
				var period time.Duration
				next := time.Now()
				if cfg.callRate > 0 {
					period = time.Duration(float64(k) / cfg.callRate * float64(time.Second))
					next = next.Add(period * time.Duration(i) / time.Duration(k))
				}
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					late := false
					if period > 0 {
						if d := time.Until(next); d > 0 {
							sleep(ctx, d)
						} else {
							late = true
						}
					}
					data = append(data[:0], `{"_r":`...)
					data = strconv.AppendInt(data, int64(n), 10)
					data = append(data, `,"_p":"`...)
					for j := len(data) + 2; j < cfg.size; j++ {
						data = append(data, 'x')
					}
					data = append(data, `"}`...)
					cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
					t0 := time.Now()
					if late {
						t0 = next
					}
					next = next.Add(period)
					sent.Add(1)
					err := c.Call(cctx, channel, data)
					cancel()
					t1 := time.Now()
					if err != nil {
						st.errs.add("call_failed", err.Error())
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
			}()
		}
		wg.Wait()
	})
	r.report.Sent, r.report.Delivered = sent.Load(), answered.Load()
	r.report.Expected = r.report.Sent
	r.report.Lost = r.report.Sent - r.report.Delivered
	return nil
}
