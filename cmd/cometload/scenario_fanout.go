package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// runFanout: S subscribers on one channel and one publisher sending
// -rate messages per second to it. The subscribers connect to the -url
// endpoints in turn, the publisher to the first -pub-url (default: the
// first -url): with the nodes of a cluster, the publisher on one node and
// the subscribers on another measure the hop between them. Every subscriber must receive every
// message: all subscriptions are acknowledged before publishing starts.
func runFanout(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	channel := cfg.channel
	if channel == "" {
		channel = "/load/fanout"
	}
	subs := make([]Client, cfg.subscribers)
	recvs := make([]*receiver, cfg.subscribers)
	defer func() { closeAll(subs, 20*time.Second) }()

	setup := time.Now()
	openAll(ctx, cfg.subscribers, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		rc := newReceiver(st, i, 0, 1)
		c := r.env.newClient(clientOpts{index: i, url: r.env.subURL(i), recv: rc})
		if err := c.Open(ctx); err != nil {
			return err
		}
		subs[i] = c
		if err := c.Subscribe(ctx, channel); err != nil {
			return err
		}
		recvs[i] = rc
		return nil
	})
	var count pubCount
	pub := r.env.newClient(clientOpts{index: cfg.subscribers, url: r.env.pubURL(0), onAck: count.onAck(&st.errs)})
	octx, cancel := context.WithTimeout(ctx, cfg.setup.timeout)
	err := pub.Open(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer closeAll([]Client{pub}, 5*time.Second)
	subscribed := 0
	for _, rc := range recvs {
		if rc != nil {
			subscribed++
		}
	}
	r.report.Clients, r.report.SetupS = subscribed, seconds(time.Since(setup))

	var seq int64
	r.measure(ctx, func(ctx context.Context, end time.Time) {
		pace(ctx, cfg.rate, end, cfg.maxBatch, func(n int) {
			if err := pub.Publish(ctx, channel, payloads(n, 0, &seq, cfg.size)); err != nil {
				st.errs.add("publish_write", err.Error())
				return
			}
			count.written.Add(int64(n))
		})
	})
	expected := func() int64 { return count.published() * int64(subscribed) }
	slog.Info("draining", "published", count.published(), "acked", count.acked.Load())
	r.drain(ctx, expected, cfg.drain)
	r.waitAcks(ctx, time.Second, &count)
	r.report.Sent = count.published()
	r.report.Expected = expected()
	r.tally(recvs)
	return nil
}
