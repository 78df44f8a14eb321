package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// runIdle: C subscribed sessions that stay idle (only their connect loop
// runs) for -hold. With -server-pid it reads the server's VmRSS before
// connecting and once all sessions are open and -settle has passed, and
// reports the growth per session. At the end one message is published to
// the sessions' channel: every session must still receive it.
func runIdle(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	channel := cfg.channel
	if channel == "" {
		channel = "/load/idle"
	}
	rss := func() int64 {
		if cfg.serverPID <= 0 {
			return 0
		}
		v, err := readRSS(cfg.serverPID)
		if err != nil {
			st.errs.add("rss", err.Error())
		}
		return v
	}
	cpu := startCPU()
	r.report.RSSBefore = rss()
	clients := make([]Client, cfg.clients)
	recvs := make([]*receiver, cfg.clients)
	defer func() { closeAll(clients, 30*time.Second) }()

	setup := time.Now()
	openAll(ctx, cfg.clients, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		rc := newReceiver(st, i, 0, 1)
		c := r.env.newClient(clientOpts{index: i, recv: rc})
		if err := c.Open(ctx); err != nil {
			return err
		}
		clients[i] = c
		if err := c.Subscribe(ctx, channel); err != nil {
			return err
		}
		recvs[i] = rc
		return nil
	})
	held := time.Now()
	for _, rc := range recvs {
		if rc != nil {
			r.report.Clients++
		}
	}
	r.report.SetupS = seconds(held.Sub(setup))
	slog.Info("holding idle sessions", "sessions", r.report.Clients, "settle", cfg.settle, "hold", cfg.hold)
	if !sleep(ctx, cfg.settle) {
		return ctx.Err()
	}
	r.report.RSSAfter = rss()
	if cfg.serverPID > 0 && r.report.Clients > 0 && r.report.RSSBefore > 0 {
		b := math.Round(float64(r.report.RSSAfter-r.report.RSSBefore) / float64(r.report.Clients))
		r.report.BytesPerSession = &b
	}
	if !sleep(ctx, time.Until(held.Add(cfg.hold))) {
		return ctx.Err()
	}
	r.report.RSSEnd = rss()
	r.report.DurationS = seconds(time.Since(held))

	// Probe: are all sessions still alive?
	var count pubCount
	pub := r.env.newClient(clientOpts{index: cfg.clients, onAck: count.onAck(&st.errs)})
	octx, cancel := context.WithTimeout(ctx, cfg.setup.timeout)
	err := pub.Open(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("probe publisher: %w", err)
	}
	defer closeAll([]Client{pub}, 5*time.Second)
	r.stats.winStart.Store(time.Now().UnixNano())
	var seq int64
	if err := pub.Publish(ctx, channel, payloads(1, 0, &seq, cfg.size)); err != nil {
		st.errs.add("publish_write", err.Error())
	} else {
		count.written.Add(1)
	}
	expected := func() int64 { return count.published() * int64(r.report.Clients) }
	r.drain(ctx, expected, cfg.drain)
	r.waitAcks(ctx, time.Second, &count)
	r.stats.winEnd.Store(time.Now().UnixNano())
	r.report.Sent = count.published()
	r.report.Expected = expected()
	r.tally(recvs)
	r.report.ToolCPUPercent = math.Round(cpu.percent())
	return nil
}
