package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// config is the run's configuration, from the command line.
type config struct {
	scenario  string
	url       string   // the first of urls
	urls      []string // -url: subscribers' endpoints, sessions spread over them in turn
	pubURLs   []string // -pub-url: publishers' endpoints (relay: where requests go); default the first of urls
	transport string
	channel   string
	label     string

	duration, warmup time.Duration
	hold, settle     time.Duration
	drain, timeout   time.Duration

	subscribers, clients int
	roomSize             int
	concurrency          int
	size                 int
	rate                 float64
	callRate             float64 // rpc: calls/s over all callers; 0 is a closed loop
	maxBatch             int
	serverPID            int   // the first of serverPIDs
	serverPIDs           []int // -server-pid: the server processes (several: the nodes of a cluster)

	// slow
	paused      int           // subscribers that stop reading
	otherShare  float64       // share of healthy subscribers on the other channel
	pausedSock  sockOpts      // socket options of the paused subscribers
	baselineP99 float64       // ms; 0: not checked
	p99Ratio    float64       // healthy p99 may be this many times baselineP99
	pausedBound time.Duration // paused must be closed within this of their stall; 0: not checked

	setup      setupOpts
	readBuf    int
	cpuProfile string
	api        string // control API base URL, for server-side stats
	apiToken   string

	// TLS, for https:// URLs and the handshakes scenario.
	caFile   string      // PEM roots to trust instead of the system's
	insecure bool        // skip certificate verification (loopback tests)
	curve    string      // key exchange offered: "" (Go's default list), x25519, p256
	tls      *tls.Config // built from the two above by parseFlags
}

// run is one scenario's execution.
type run struct {
	cfg    *config
	env    *env
	stats  *Stats
	report *Report
	// apiBefore is the gateway's latency snapshot at the window's start
	// (with -api).
	apiBefore *serverLatency
	// atWindow, if set, is called as the measurement window opens.
	atWindow func()
}

// measure runs body over warmup + duration, opening the measurement
// window after the warmup. It returns the window's length and the tool's
// CPU use over it.
func (r *run) measure(ctx context.Context, body func(ctx context.Context, end time.Time)) {
	start := time.Now()
	end := start.Add(r.cfg.warmup + r.cfg.duration)
	var cpu cpuMeter
	var server serverMeter
	var nodeCPU []time.Duration // each server's CPU time over the window
	windowDone := make(chan struct{})
	go func() {
		defer close(windowDone)
		if !sleep(ctx, r.cfg.warmup) {
			return
		}
		cpu = startCPU()
		server = startServerCPU(r.cfg.serverPIDs...)
		r.stats.winStart.Store(time.Now().UnixNano())
		if r.atWindow != nil {
			r.atWindow()
		}
		if r.cfg.api != "" {
			var err error
			if r.apiBefore, err = fetchServerLatency(ctx, r.cfg.api, r.cfg.apiToken); err != nil {
				r.stats.errs.add("server_stats", err.Error())
			}
		}
		slog.Info("measuring", "for", r.cfg.duration)
		if !sleep(ctx, time.Until(end)) {
			return
		}
		r.stats.winEnd.Store(time.Now().UnixNano())
		r.report.ToolCPUPercent = math.Round(cpu.percent())
		if used, wall := server.used(); used != nil {
			nodeCPU = used
			r.report.ServerCPUPercent = server.percent()
			if len(used) > 1 {
				for _, u := range used {
					r.report.NodeCPUPercent = append(r.report.NodeCPUPercent, math.Round(float64(u)/float64(wall)*100))
				}
			}
		}
	}()
	body(ctx, end)
	<-windowDone
	ws, we := r.stats.window()
	if we > ws && ws != math.MaxInt64 {
		w := time.Duration(we - ws)
		r.report.DurationS = seconds(w)
		n := r.stats.inWindow.Load()
		r.report.DeliveredPerSec = math.Round(float64(n) / w.Seconds())
		if nodeCPU != nil && n > 0 {
			var sum time.Duration
			for _, u := range nodeCPU {
				sum += u
			}
			us := math.Round(float64(sum)/float64(time.Microsecond)/float64(n)*100) / 100
			r.report.ServerCPUMicrosPerDelivery = &us
		}
	}
}

// serverMeter measures the server processes' CPU use, when their PIDs
// are known: several for the nodes of a cluster.
type serverMeter struct {
	pids []int
	wall time.Time
	cpu  []time.Duration
}

func startServerCPU(pids ...int) serverMeter {
	m := serverMeter{wall: time.Now()}
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		cpu, err := processCPU(pid)
		if err != nil {
			continue
		}
		m.pids, m.cpu = append(m.pids, pid), append(m.cpu, cpu)
	}
	return m
}

// used returns each process's CPU time since the meter started, and the
// wall time; nil if no process is known or one cannot be read.
func (m serverMeter) used() ([]time.Duration, time.Duration) {
	if len(m.pids) == 0 {
		return nil, 0
	}
	wall := time.Since(m.wall)
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		cpu, err := processCPU(pid)
		if err != nil {
			return nil, 0
		}
		out[i] = cpu - m.cpu[i]
	}
	return out, wall
}

// percent returns the servers' CPU time / wall time × 100 since the meter
// started, summed over the processes, or nil if unknown.
func (m serverMeter) percent() *float64 {
	used, wall := m.used()
	if used == nil {
		return nil
	}
	var sum time.Duration
	for _, u := range used {
		sum += u
	}
	p := math.Round(float64(sum) / float64(wall) * 100)
	return &p
}

// pace calls send(n) so that rate messages per second are sent from now
// until end: every tick it sends what is due, in batches of at most
// maxBatch. If send falls behind, the backlog goes out as fast as send
// allows (an open-loop load).
func pace(ctx context.Context, rate float64, end time.Time, maxBatch int, send func(n int)) {
	tick := time.Duration(float64(time.Second) / rate)
	tick = max(tick, time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var done int64
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		due := int64(now.Sub(start).Seconds()*rate) + 1 - done
		for due > 0 && ctx.Err() == nil {
			n := min(due, int64(maxBatch))
			send(int(n))
			done += n
			due -= n
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// drain waits until expected() payloads have been received, progress
// stops for two seconds, or limit passes.
func (r *run) drain(ctx context.Context, expected func() int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, lastChange := int64(-1), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		got := r.stats.received.Load()
		if got >= expected() {
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			slog.Warn("deliveries stopped before all arrived", "received", got, "expected", expected())
			return
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if got := r.stats.received.Load(); got < expected() {
		slog.Warn("drain limit reached", "received", got, "expected", expected())
	}
}

// pubCount counts the messages of a group of publishers: written to the
// server, acknowledged, and refused (an unsuccessful ack).
type pubCount struct {
	written, acked, refused atomic.Int64
}

// onAck returns the ack callback of a publisher of the group.
func (p *pubCount) onAck(errs *errorLog) func(bool, string) {
	return func(ok bool, e string) {
		if ok {
			p.acked.Add(1)
			return
		}
		p.refused.Add(1)
		errs.add("publish_failed", e)
	}
}

// published counts the messages the server did not refuse: each
// subscriber must receive them, acknowledged yet or not.
func (p *pubCount) published() int64 { return p.written.Load() - p.refused.Load() }

// unanswered counts the messages with no ack yet.
func (p *pubCount) unanswered() int64 {
	return p.written.Load() - p.acked.Load() - p.refused.Load()
}

// waitAcks waits until every counted message has its ack, or limit
// passes; then it records the messages still without one.
func (r *run) waitAcks(ctx context.Context, limit time.Duration, counts ...*pubCount) {
	unanswered := func() (n int64) {
		for _, c := range counts {
			n += c.unanswered()
		}
		return n
	}
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil && time.Now().Before(deadline) && unanswered() > 0 {
		sleep(ctx, 20*time.Millisecond)
	}
	if n := unanswered(); n > 0 {
		r.stats.errs.add("unacked_publishes", fmt.Sprintf("%d publishes without an ack after %v", n, limit))
	}
}

// tally sums the receivers' counts into the report.
func (r *run) tally(recvs []*receiver) {
	var foreign int64
	for _, rc := range recvs {
		if rc == nil {
			continue
		}
		got, dups, f := rc.counts()
		r.report.Delivered += got
		r.report.Duplicates += dups
		foreign += f
	}
	if foreign > 0 {
		r.stats.errs.add("foreign_payload", "payloads from an unexpected publisher")
	}
	r.report.Lost = r.report.Expected - r.report.Delivered
}

// payloads builds n payloads of publisher pub, numbered from *seq+1.
func payloads(n int, pub int, seq *int64, size int) [][]byte {
	out := make([][]byte, n)
	buf := make([]byte, 0, n*(max(size, payloadOverhead)+8))
	now := time.Now().UnixNano()
	for i := range out {
		*seq++
		start := len(buf)
		buf = appendPayload(buf, now, *seq, pub, size)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}
