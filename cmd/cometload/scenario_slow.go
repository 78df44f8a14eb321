package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runSlow: issue 8's slow consumer. -subscribers H healthy websocket
// subscribers, a share -other-share of them on channel B (-channel +
// "/b") and the rest on channel A ("/a"), and -paused P subscribers on A.
// Two publishers send -rate messages/s of -size bytes each, one to A and
// one to B. When the measurement starts, after -warmup (time 0), the
// paused subscribers stop reading their sockets, so that what the server
// sends them fills the kernel's buffers and then its own queue. P = 0 is
// the baseline run.
//
// It reports the healthy subscribers' latency per channel and overall,
// what each received against what was published to its channel, the
// longest time any of them went without a delivery, which of them lost
// their session or connection and how; and for each paused subscriber,
// when its socket stopped taking data and whether and when the gateway
// closed it (see pausedSub).
func runSlow(ctx context.Context, r *run) error {
	cfg, st := r.cfg, r.stats
	prefix := cfg.channel
	if prefix == "" {
		prefix = "/load/slow"
	}
	h := cfg.subscribers
	onB := int(math.Round(float64(h) * cfg.otherShare))
	groups := []*slowGroup{{channel: prefix + "/a"}, {channel: prefix + "/b"}}
	groupOf := func(i int) int {
		if i < h-onB {
			return 0
		}
		return 1
	}
	clients := make([]Client, h)
	recvs := make([]*receiver, h)
	ends := make([]*endNote, h)
	defer func() { closeAll(clients, 20*time.Second) }()

	setup := time.Now()
	r.report.Clients = openAll(ctx, h, cfg.setup, &st.errs, "open_failed", func(ctx context.Context, i int) error {
		g := groupOf(i)
		rc := newReceiver(st, i, g, 1)
		rc.group = groups[g]
		end := &endNote{}
		c := r.env.newClient(clientOpts{index: i, recv: rc, ended: end})
		if err := c.Open(ctx); err != nil {
			return err
		}
		clients[i] = c
		if err := c.Subscribe(ctx, groups[g].channel); err != nil {
			return err
		}
		recvs[i], ends[i] = rc, end
		return nil
	})
	for i, rc := range recvs {
		if rc != nil {
			g := groups[groupOf(i)]
			g.recvs, g.ends = append(g.recvs, rc), append(g.ends, ends[i])
		}
	}

	// The paused subscribers have their own stats (their latency and
	// errors are not the healthy ones') and sockets (-paused-rcvbuf).
	pst := newStats()
	pe := *r.env
	pe.stats, pe.ws = pst, newWSShared(cfg.url, cfg.readBuf, cfg.pausedSock, cfg.tls)
	paused := make([]*pausedSub, cfg.paused)
	pausedClients := make([]Client, 0, cfg.paused)
	defer func() { closeAll(pausedClients, 20*time.Second) }()
	for j := range paused {
		p := &pausedSub{gate: newReadGate(), ended: &endNote{}, recv: newReceiver(pst, j, 0, 1)}
		p.c = newWSClient(&pe, clientOpts{index: h + j, recv: p.recv, gate: p.gate, ended: p.ended})
		octx, cancel := context.WithTimeout(ctx, cfg.setup.timeout)
		err := p.c.Open(octx)
		if err == nil {
			pausedClients = append(pausedClients, p.c)
			err = p.c.Subscribe(octx, groups[0].channel)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("paused subscriber %d: %w", j, err)
		}
		p.id = p.c.id()
		paused[j] = p
	}

	// One publisher per channel that has subscribers.
	var pubClients []Client
	defer func() { closeAll(pubClients, 5*time.Second) }()
	for gi, g := range groups {
		if len(g.recvs) == 0 && (gi > 0 || len(paused) == 0) {
			continue
		}
		c := r.env.newClient(clientOpts{index: h + len(paused) + gi, onAck: g.count.onAck(&st.errs)})
		octx, cancel := context.WithTimeout(ctx, cfg.setup.timeout)
		err := c.Open(octx)
		cancel()
		if err != nil {
			return fmt.Errorf("publisher of %s: %w", g.channel, err)
		}
		pubClients = append(pubClients, c)
		g.pub = c
	}
	r.report.SetupS = seconds(time.Since(setup))

	// Time 0, as the window opens: the paused subscribers stop reading.
	var (
		t0       time.Time
		api      []apiSample
		watchers sync.WaitGroup
	)
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	r.atWindow = func() {
		t0 = time.Now()
		for _, g := range groups {
			g.t0.Store(t0.UnixNano())
		}
		for _, p := range paused {
			p.gate.pause()
			watchers.Go(func() { p.watch(wctx, t0) })
		}
		if cfg.api != "" {
			watchers.Go(func() { api = watchAPI(wctx, cfg.api, cfg.apiToken, paused, t0) })
		}
		slog.Info("paused subscribers stopped reading", "healthy", r.report.Clients, "paused", len(paused))
	}

	r.measure(ctx, func(ctx context.Context, end time.Time) {
		pace(ctx, cfg.rate, end, cfg.maxBatch, func(n int) {
			for gi, g := range groups {
				if g.pub == nil {
					continue
				}
				if err := g.pub.Publish(ctx, g.channel, payloads(n, gi, &g.seq, cfg.size)); err != nil {
					st.errs.add("publish_write", err.Error())
					continue
				}
				g.count.written.Add(int64(n))
			}
		})
	})
	pubEnd := time.Now()
	if t0.IsZero() {
		return fmt.Errorf("stopped before the measurement: %w", ctx.Err())
	}
	expected := func() (n int64) {
		for _, g := range groups {
			n += g.count.published() * int64(len(g.recvs))
		}
		return n
	}
	slog.Info("draining", "published", groups[0].count.published()+groups[1].count.published())
	r.drain(ctx, expected, cfg.drain)
	r.waitAcks(ctx, time.Second, &groups[0].count, &groups[1].count)
	stopWatching()
	watchers.Wait()

	// Now read what the paused sockets hold, to their end: how they end
	// says whether the gateway closed them.
	if len(paused) > 0 {
		slog.Info("draining the paused sockets")
		var wg sync.WaitGroup
		for _, p := range paused {
			wg.Go(func() { p.drain(ctx, min(cfg.drain, pausedIdle), cfg.drain) })
		}
		wg.Wait()
	}

	for _, g := range groups {
		r.report.Sent += g.count.published()
	}
	r.report.Expected = expected()
	r.tally(recvs)
	r.report.Slow = slowReport(cfg, groups, paused, api, t0, pubEnd)
	if _, kinds, _ := pst.errs.snapshot(); len(kinds) > 0 {
		r.report.Slow.PausedErrors = kinds
	}
	return nil
}

// pausedIdle is how long a paused socket being drained may stay silent
// before it counts as still open.
const pausedIdle = 2 * time.Second

// slowGroup is the healthy subscribers of one channel of the slow
// scenario, and its publisher.
type slowGroup struct {
	channel string
	t0      atomic.Int64 // when publishing started, Unix ns
	pub     Client
	seq     int64 // the publisher's last sequence number
	count   pubCount
	recvs   []*receiver // of the subscribers that subscribed
	ends    []*endNote  // same order

	mu sync.Mutex // guards h, tl
	h  histogram  // latencies of the payloads sent in the window
	tl timeline   // every payload, by second of its arrival since t0
}

// recordLocked accounts for one payload sent at sent and received at now
// (Unix ns); inWindow says whether its latency counts. The caller holds
// g.mu.
func (g *slowGroup) recordLocked(now, sent int64, inWindow bool) {
	if inWindow {
		g.h.record(now - sent)
	}
	if t0 := g.t0.Load(); t0 != 0 {
		g.tl.add(time.Duration(now-t0), now-sent)
	}
}

// timeline counts payloads by the second of their arrival, with the
// largest latency among them. Times past maxTimeline are not kept.
type timeline struct {
	n   []int64
	max []int64 // ns
}

const maxTimeline = time.Hour

func (t *timeline) add(at time.Duration, latency int64) {
	if at < 0 || at >= maxTimeline {
		return
	}
	s := int(at / time.Second)
	for len(t.n) <= s {
		t.n, t.max = append(t.n, 0), append(t.max, 0)
	}
	t.n[s]++
	t.max[s] = max(t.max[s], latency)
}

// merge adds o's counts into t.
func (t *timeline) merge(o *timeline) {
	for s := range o.n {
		for len(t.n) <= s {
			t.n, t.max = append(t.n, 0), append(t.max, 0)
		}
		t.n[s] += o.n[s]
		t.max[s] = max(t.max[s], o.max[s])
	}
}

// pausedSub is a subscriber of the slow scenario that stops reading its
// socket at time 0. While publishing goes on, a watcher samples, without
// reading, the bytes waiting in its socket and the socket's TCP state
// (sockState); at the end it reads the socket to its end (a close frame,
// EOF, a reset, or silence for pausedIdle: still open).
type pausedSub struct {
	c     *wsClient
	id    string // Bayeux clientId
	gate  *readGate
	ended *endNote
	recv  *receiver

	samples []sockSample // written by watch only, read after it returns
	end     string       // how the socket ended when drained
}

// sockSample is one look at a paused socket.
type sockSample struct {
	at     time.Duration // since time 0
	queued int           // bytes received and not read
	state  uint8         // TCP state (tcpi_state)
}

// watch samples the socket every 100 ms until ctx ends.
func (p *pausedSub) watch(ctx context.Context, t0 time.Time) {
	sc, ok := p.c.conn.UnderlyingConn().(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		q, state, err := sockState(rc)
		if err != nil {
			p.c.env.stats.errs.add("socket_state", err.Error())
			return
		}
		p.samples = append(p.samples, sockSample{at: time.Since(t0), queued: q, state: state})
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// drain opens the gate and waits, at most limit, for the socket to end;
// idle is how long it may stay silent.
func (p *pausedSub) drain(ctx context.Context, idle, limit time.Duration) {
	p.gate.resume(idle)
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.c.done:
		switch reason := p.ended.last(); reason {
		case "":
			p.end = "closed"
		case "timeout":
			p.end = "open"
		default:
			p.end = reason
		}
	case <-t.C:
		p.end = "open"
	case <-ctx.Done():
		p.end = "unknown"
	}
}

// tcpStateNames names the Linux TCP states (include/net/tcp_states.h).
var tcpStateNames = [...]string{1: "established", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait-1", 5: "fin-wait-2",
	6: "time-wait", 7: "close", 8: "close-wait", 9: "last-ack", 10: "listen", 11: "closing"}

const tcpEstablished = 1

func tcpStateName(s uint8) string {
	if int(s) < len(tcpStateNames) && tcpStateNames[s] != "" {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("state-%d", s)
}

// sockSummary is what a paused socket's samples show.
type sockSummary struct {
	peak     int           // most bytes seen waiting in it
	stall    time.Duration // when they last grew, if they then stayed put for the quiet time
	stalled  bool
	closed   time.Duration // when it left the established state (a reset, or a FIN that got through)
	state    uint8         // the state it went to
	isClosed bool
}

// summarizeSocket reads a paused socket's samples: the queue of bytes
// waiting in it grows while the server's data gets through; once it stops
// growing for quiet, the kernel's buffers are full (or the server stopped
// sending). A sample out of the established state marks the socket
// closed by the peer.
func summarizeSocket(samples []sockSample, quiet time.Duration) sockSummary {
	var out sockSummary
	var grewAt, last time.Duration
	for _, s := range samples {
		if s.state != tcpEstablished {
			out.closed, out.state, out.isClosed = s.at, s.state, true
			last = s.at
			break
		}
		if s.queued > out.peak {
			out.peak, grewAt = s.queued, s.at
		}
		last = s.at
	}
	if out.peak > 0 && last-grewAt >= quiet {
		out.stall, out.stalled = grewAt, true
	}
	return out
}

// apiSample is one look at the gateway through its control API.
type apiSample struct {
	at       time.Duration // since time 0
	ok       bool          // counts were read
	counts   gatewayCounts
	sessions []gatewaySession // of the paused subscribers, in order; nil entries' Found is false
	sessOK   []bool           // whether each session was read
}

// watchAPI samples the gateway's counters and the paused sessions every
// 250 ms until ctx ends.
func watchAPI(ctx context.Context, base, token string, paused []*pausedSub, t0 time.Time) []apiSample {
	var out []apiSample
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		s := apiSample{sessions: make([]gatewaySession, len(paused)), sessOK: make([]bool, len(paused))}
		c, err := fetchGatewayCounts(ctx, base, token)
		s.counts, s.ok = c, err == nil
		for j, p := range paused {
			gs, err := fetchGatewaySession(ctx, base, token, p.id)
			s.sessions[j], s.sessOK[j] = gs, err == nil
		}
		if ctx.Err() != nil {
			return out
		}
		s.at = time.Since(t0)
		out = append(out, s)
		select {
		case <-t.C:
		case <-ctx.Done():
			return out
		}
	}
}

// apiSessionSummary is what the control API showed of one paused session.
type apiSessionSummary struct {
	gone     time.Duration // first sample without the session
	isGone   bool
	backlog  time.Duration // start of the queue's last rise above the threshold
	backed   bool
	maxQueue int
}

// summarizeSession reads the samples of paused session j: when the
// gateway removed it, and since when its queue held more than threshold
// messages without going back under (the gateway no longer writing to
// it).
func summarizeSession(samples []apiSample, j, threshold int) apiSessionSummary {
	var out apiSessionSummary
	for _, s := range samples {
		if !s.sessOK[j] {
			continue
		}
		gs := s.sessions[j]
		if !gs.Found {
			out.gone, out.isGone = s.at, true
			break
		}
		out.maxQueue = max(out.maxQueue, gs.QueueDepth)
		switch {
		case gs.QueueDepth <= threshold:
			out.backed = false
		case !out.backed:
			out.backlog, out.backed = s.at, true
		}
	}
	return out
}

// unexplainedCloses returns the times at which the gateway's websocket
// connection count first fell 1, 2, … below its first sample more than
// the healthy subscribers that had lost theirs by then (within slack: a
// client sees a close a little after the gateway counts it) explain: the
// paused subscribers' connections being closed.
func unexplainedCloses(samples []apiSample, healthyEnds []time.Duration, slack time.Duration) []time.Duration {
	var out []time.Duration
	var base int64 = -1
	for _, s := range samples {
		if !s.ok {
			continue
		}
		if base < 0 {
			base = s.counts.WebsocketConnections
			continue
		}
		explained := 0
		for _, e := range healthyEnds {
			if e <= s.at+slack {
				explained++
			}
		}
		for int64(len(out)) < base-s.counts.WebsocketConnections-int64(explained) {
			out = append(out, s.at)
		}
	}
	return out
}

// slowReport builds the scenario's part of the report.
func slowReport(cfg *config, groups []*slowGroup, paused []*pausedSub, api []apiSample, t0, pubEnd time.Time) *SlowReport {
	rep := &SlowReport{Paused: len(paused), DropReasons: map[string]int64{}}
	if len(paused) > 0 {
		rep.PausedRcvBuf, rep.PausedMSS = cfg.pausedSock.rcvBuf, cfg.pausedSock.mss
	}
	var all timeline
	var healthyEnds []time.Duration
	var maxGap time.Duration
	t0ns := t0.UnixNano()
	for _, g := range groups {
		if len(g.recvs) == 0 && g.pub == nil {
			continue
		}
		ch := SlowChannel{Channel: g.channel, Subscribers: len(g.recvs), Published: g.count.published()}
		got := make([]int64, len(g.recvs))
		var gap time.Duration
		for i, rc := range g.recvs {
			got[i], _, _ = rc.counts()
			if got[i] < ch.Published {
				ch.Short++
			}
			until := pubEnd
			if at, reason := g.ends[i].get(); !at.IsZero() {
				rep.HealthyDropped++
				rep.DropReasons[truncate(reason, 80)]++
				healthyEnds = append(healthyEnds, at.Sub(t0))
				if at.Before(until) {
					until = at
				}
			}
			gap = max(gap, rc.gapUntil(until.UnixNano(), t0ns))
		}
		slices.Sort(got)
		if len(got) > 0 {
			ch.ReceivedMin, ch.ReceivedMedian, ch.ReceivedMax = got[0], got[len(got)/2], got[len(got)-1]
		}
		ch.MaxGapMS = ms(gap)
		maxGap = max(maxGap, gap)
		g.mu.Lock()
		ch.Latency = latencyMS(&g.h)
		all.merge(&g.tl)
		g.mu.Unlock()
		rep.Healthy += ch.Subscribers
		rep.Channels = append(rep.Channels, ch)
	}
	rep.MaxGapMS = ms(maxGap)
	slices.Sort(healthyEnds)
	if len(healthyEnds) > 0 {
		f := seconds(healthyEnds[0])
		rep.FirstDropS = &f
	}

	rep.Timeline.Delivered = all.n
	rep.Timeline.MaxMS = make([]float64, len(all.max))
	for i, v := range all.max {
		rep.Timeline.MaxMS[i] = ms(time.Duration(v))
	}

	var connCloses []time.Duration
	if len(api) > 0 {
		rep.Gateway = gatewaySummary(api)
		connCloses = unexplainedCloses(api, healthyEnds, time.Second)
		for _, c := range connCloses {
			rep.Gateway.UnexplainedClosesS = append(rep.Gateway.UnexplainedClosesS, seconds(c))
		}
	}
	for j, p := range paused {
		pr := pausedResult(p, j, groups[0], api, max(1, int(cfg.rate/10))) // 100 ms of messages
		if len(paused) == 1 && len(connCloses) > 0 {
			pr.ConnClosedS = ptr(seconds(connCloses[0]))
		}
		pr.settle()
		rep.PausedClients = append(rep.PausedClients, pr)
		rep.Timeline.addQueued(p.samples)
	}
	return rep
}

// gatewaySummary sums up the control API's samples.
func gatewaySummary(api []apiSample) *SlowGateway {
	gw := &SlowGateway{}
	first, last := -1, -1
	for i, s := range api {
		if s.ok {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return gw
	}
	a, b := api[first].counts, api[last].counts
	gw.ConnsAtStart, gw.ConnsMin, gw.ConnsAtEnd = a.WebsocketConnections, a.WebsocketConnections, b.WebsocketConnections
	for _, s := range api[first:] {
		if s.ok {
			gw.ConnsMin = min(gw.ConnsMin, s.counts.WebsocketConnections)
		}
	}
	gw.DroppedSlow, gw.Expired = b.DroppedSlow-a.DroppedSlow, b.Expired-a.Expired
	return gw
}

// pausedResult describes paused subscriber j of channel g from its
// socket's samples and, if any, the control API's; threshold is the queue
// depth past which the gateway counts as no longer writing to it.
func pausedResult(p *pausedSub, j int, g *slowGroup, api []apiSample, threshold int) PausedResult {
	pr := PausedResult{Channel: g.channel, Published: g.count.published(), End: p.end}
	pr.Received, _, _ = p.recv.counts()
	sk := summarizeSocket(p.samples, time.Second)
	pr.PeakQueuedBytes = sk.peak
	if sk.stalled {
		pr.SocketFullS = ptr(seconds(sk.stall))
	}
	if sk.isClosed {
		pr.TCPClosedS, pr.TCPState = ptr(seconds(sk.closed)), tcpStateName(sk.state)
	}
	if len(api) > 0 {
		ss := summarizeSession(api, j, threshold)
		pr.MaxQueueDepth = &ss.maxQueue
		if ss.isGone {
			pr.SessionGoneS = ptr(seconds(ss.gone))
		}
		if ss.backed {
			pr.BacklogS = ptr(seconds(ss.backlog))
		}
	}
	return pr
}

// settle fills in ClosedS, the earliest sign that the gateway closed the
// subscriber, and ClosedAfterStallS, counted from when the gateway's queue
// for it started to back up, or else from when its socket was full.
func (p *PausedResult) settle() {
	var closed *float64
	for _, v := range []*float64{p.TCPClosedS, p.SessionGoneS, p.ConnClosedS} {
		if v != nil && (closed == nil || *v < *closed) {
			closed = v
		}
	}
	if closed == nil {
		return
	}
	p.ClosedS = ptr(*closed)
	stall := p.BacklogS
	if stall == nil {
		stall = p.SocketFullS
	}
	if stall != nil {
		p.ClosedAfterStallS = ptr(math.Round((*closed-*stall)*1000) / 1000)
	}
}

// addQueued adds a paused socket's samples to the timeline: the most
// bytes waiting in a paused socket each second, in KiB.
func (t *SlowTimeline) addQueued(samples []sockSample) {
	for _, s := range samples {
		if s.at < 0 || s.at >= maxTimeline {
			continue
		}
		sec := int(s.at / time.Second)
		for len(t.PausedQueuedKB) <= sec {
			t.PausedQueuedKB = append(t.PausedQueuedKB, 0)
		}
		t.PausedQueuedKB[sec] = max(t.PausedQueuedKB[sec], int64(s.queued/1024))
	}
}

// slowChecks returns the slow run's failed checks: healthy sessions
// dropped; healthy p99 above ratio × baselineP99 (when baselineP99 > 0);
// a paused subscriber not closed by the gateway within bound of its stall
// (when bound > 0; from time 0 if no stall was seen).
func slowChecks(rep *SlowReport, p99, baselineP99, ratio float64, bound time.Duration) []string {
	var fail []string
	if rep.HealthyDropped > 0 {
		fail = append(fail, fmt.Sprintf("%d healthy sessions dropped", rep.HealthyDropped))
	}
	if baselineP99 > 0 && p99 > ratio*baselineP99 {
		fail = append(fail, fmt.Sprintf("healthy p99 %.2f ms > %g × baseline %.2f ms", p99, ratio, baselineP99))
	}
	if bound > 0 {
		for j, p := range rep.PausedClients {
			switch {
			case p.ClosedS == nil:
				fail = append(fail, fmt.Sprintf("paused subscriber %d not disconnected", j))
			case p.ClosedAfterStallS != nil && *p.ClosedAfterStallS > bound.Seconds():
				fail = append(fail, fmt.Sprintf("paused subscriber %d disconnected %.1f s after its stall > %v", j, *p.ClosedAfterStallS, bound))
			case p.ClosedAfterStallS == nil && *p.ClosedS > bound.Seconds():
				fail = append(fail, fmt.Sprintf("paused subscriber %d disconnected %.1f s after it stopped reading > %v", j, *p.ClosedS, bound))
			}
		}
	}
	return fail
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ptr[T any](v T) *T { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
