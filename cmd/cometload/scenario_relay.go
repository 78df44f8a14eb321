package main

import (
	"context"
	"errors"
	"strconv"
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

	measureRequests(ctx, r, k, func(i int) func(context.Context, int) error {
		c := clients[i]
		if c == nil {
			return nil
		}
		base := r.env.pubURL(i)
		var data []byte
		return func(ctx context.Context, n int) error {
			data = append(data[:0], `{"_r":`...)
			data = strconv.AppendInt(data, int64(n), 10)
			data = append(data, '}')
			return c.PublishVia(ctx, base, channel, data)
		}
	}, "request_failed")
	return nil
}
