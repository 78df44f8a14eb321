package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runRooms: N clients in rooms of G (clients i*G … i*G+G-1 share room
// i), each subscribed to its room and publishing -rate messages per
// second to it, as in a chat. Each member must receive every message of
// its room, its own included (the server's default broadcastToPublisher).
func runRooms(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	n, g := cfg.clients, max(cfg.roomSize, 1)
	rooms := (n + g - 1) / g
	prefix := cfg.channel
	if prefix == "" {
		prefix = "/load/room"
	}
	roomChannel := func(room int) string { return prefix + "/" + strconv.Itoa(room) }
	counts := make([]pubCount, rooms)
	members := make([]atomic.Int64, rooms)
	clients := make([]Client, n)
	recvs := make([]*receiver, n)
	defer func() { closeAll(clients, 20*time.Second) }()

	setup := time.Now()
	r.report.Clients = openAll(ctx, n, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		room := i / g
		rc := newReceiver(st, i, room*g, min(g, n-room*g))
		c := r.env.newClient(clientOpts{index: i, recv: rc, onAck: counts[room].onAck(&st.errs)})
		if err := c.Open(ctx); err != nil {
			return err
		}
		clients[i] = c
		if err := c.Subscribe(ctx, roomChannel(room)); err != nil {
			return err
		}
		recvs[i] = rc
		members[room].Add(1)
		return nil
	})
	r.report.SetupS = seconds(time.Since(setup))

	r.measure(ctx, func(ctx context.Context, end time.Time) {
		var wg sync.WaitGroup
		interval := time.Duration(float64(time.Second) / cfg.rate)
		for i, c := range clients {
			if recvs[i] == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Spread the publishers over the interval, then tick.
				if !sleep(ctx, rand.N(interval)) {
					return
				}
				t := time.NewTicker(interval)
				defer t.Stop()
				var seq int64
				room := i / g
				ch := roomChannel(room)
				for time.Now().Before(end) {
					if err := c.Publish(ctx, ch, payloads(1, i, &seq, cfg.size)); err != nil {
						st.errs.add("publish_write", err.Error())
					} else {
						counts[room].written.Add(1)
					}
					select {
					case <-t.C:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	expected := func() int64 {
		var sum int64
		for room := range rooms {
			sum += counts[room].published() * members[room].Load()
		}
		return sum
	}
	r.drain(ctx, expected, cfg.drain)
	ptrs := make([]*pubCount, rooms)
	for room := range rooms {
		ptrs[room] = &counts[room]
	}
	r.waitAcks(ctx, time.Second, ptrs...)
	for room := range rooms {
		r.report.Sent += counts[room].published()
	}
	r.report.Expected = expected()
	r.tally(recvs)
	return nil
}
