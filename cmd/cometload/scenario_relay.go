package main

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runRelay: the cost of a long-polling request that lands on a node of a
// cluster other than the session's owner, which relays it over NATS.
// -concurrency K long-polling sessions are opened on the -url endpoints
// in turn (their owners, where their connect loops stay); then each sends
// publishes to -channel (default /load/relay, no subscribers) with
// requests to the -pub-url endpoints in turn, one at a time, waiting for
// each acknowledgement. The latency is that round trip. Run it once with
// -pub-url naming the owners and once naming other nodes: the difference
// is what the relay adds per request. -call-rate paces the requests as in
// the rpc scenario (0: a closed loop).
func runRelay(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	channel := cfg.channel
	if channel == "" {
		channel = "/load/relay"
	}
	k := cfg.concurrency
	clients := make([]*lpClient, k)
	defer func() {
		all := make([]Client, 0, k)
		for _, c := range clients {
			if c != nil {
				all = append(all, c)
			}
		}
		closeAll(all, 20*time.Second)
	}()
	setup := time.Now()
	r.report.Clients = openAll(ctx, k, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		c, ok := r.env.newClient(clientOpts{index: i, url: r.env.subURL(i)}).(*lpClient)
		if !ok {
			return errors.New("relay: long-polling clients only")
		}
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
			base := r.env.pubURL(i)
			wg.Go(func() {
				var data []byte
				sched := newSchedule(time.Now(), cfg.callRate, k, i)
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					if d := sched.wait(time.Now()); d > 0 {
						sleep(ctx, d)
					}
					data = append(data[:0], `{"_r":`...)
					data = strconv.AppendInt(data, int64(n), 10)
					data = append(data, '}')
					cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
					t0 := sched.start(time.Now())
					sent.Add(1)
					err := c.PublishVia(cctx, base, channel, data)
					cancel()
					t1 := time.Now()
					if err != nil {
						st.errs.add("request_failed", err.Error())
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
	return nil
}
