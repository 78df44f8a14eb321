package main

import (
	"context"
	"strconv"
	"time"
)

// runRPC: K sessions, each with one remote call in flight at a time on a
// service channel (-channel, default /service/echo). The latency is the
// round trip from the publish to the answer with the same id.
//
// With -call-rate R, each session calls on its own schedule (see
// schedule), R/K times a second. Below saturation, the difference between
// two servers' latencies at the same R is what one adds to a call; a
// closed loop (R = 0) measures throughput instead, and its latency is K
// divided by it.
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

	measureRequests(ctx, r, k, func(i int) func(context.Context, int) error {
		c := clients[i]
		if c == nil {
			return nil
		}
		var data []byte
		return func(ctx context.Context, n int) error {
			data = append(data[:0], `{"_r":`...)
			data = strconv.AppendInt(data, int64(n), 10)
			data = append(data, `,"_p":"`...)
			for j := len(data) + 2; j < cfg.size; j++ {
				data = append(data, 'x')
			}
			data = append(data, `"}`...)
			return c.Call(ctx, channel, data)
		}
	}, "call_failed")
	return nil
}

// schedule paces one of k callers sharing rate calls/s: caller i calls
// every k/rate seconds, offset by i/k of that period so the callers are
// staggered. A call that is late because the one before it was slow is
// timed from when it was due, not from when it was sent: that wait counts,
// so a server that falls behind shows it (no coordinated omission). A call
// on time is timed from when it is sent, so the tool's own timer slack is
// not counted. A zero schedule (rate 0) never waits.
type schedule struct {
	period time.Duration
	next   time.Time // when the next call is due
	late   bool      // the next call is already overdue
}

func newSchedule(now time.Time, rate float64, k, i int) schedule {
	if rate <= 0 {
		return schedule{}
	}
	p := time.Duration(float64(k) / rate * float64(time.Second))
	return schedule{period: p, next: now.Add(p * time.Duration(i) / time.Duration(k))}
}

// wait returns how long to sleep before the next call.
func (s *schedule) wait(now time.Time) time.Duration {
	if s.period == 0 {
		return 0
	}
	d := s.next.Sub(now)
	s.late = d <= 0
	return max(d, 0)
}

// start records that the next call is sent at now and returns the time its
// latency runs from.
func (s *schedule) start(now time.Time) time.Time {
	t0 := now
	if s.late {
		t0 = s.next
	}
	s.next = s.next.Add(s.period)
	return t0
}
