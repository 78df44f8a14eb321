package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSlowFlagDefaults(t *testing.T) {
	for _, c := range []struct {
		name                string
		args                []string
		subs                int
		rate                float64
		size                int
		duration            time.Duration
		paused, rcvBuf, mss int
	}{
		{"slow defaults", []string{"-scenario", "slow"}, 100, 300, 1024, 30 * time.Second, 1, 4096, 1460},
		{"slow, set flags kept", []string{"-scenario", "slow", "-rate", "50", "-subscribers", "7", "-paused", "0", "-paused-rcvbuf", "0", "-duration", "5s"},
			7, 50, 1024, 5 * time.Second, 0, 0, 1460},
		{"fanout untouched", []string{"-scenario", "fanout"}, 1000, 100, 100, 10 * time.Second, 1, 4096, 1460},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseFlags(c.args)
			if err != nil {
				t.Fatalf("parseFlags(%v): %v", c.args, err)
			}
			got := []any{cfg.subscribers, cfg.rate, cfg.size, cfg.duration, cfg.paused, cfg.pausedSock.rcvBuf, cfg.pausedSock.mss}
			want := []any{c.subs, c.rate, c.size, c.duration, c.paused, c.rcvBuf, c.mss}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseFlags(%v) = %v; want %v", c.args, got, want)
			}
		})
	}
	for _, bad := range [][]string{
		{"-scenario", "slow", "-transport", "long-polling"},
		{"-scenario", "slow", "-other-share", "1.5"},
		{"-scenario", "slow", "-paused", "-1"},
		{"-scenario", "slow", "-check-p99-ratio", "0"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%v) = nil error; want one", bad)
		}
	}
}

func TestSummarizeSocket(t *testing.T) {
	ms := time.Millisecond
	grow := func(queued ...int) []sockSample {
		var out []sockSample
		for i, q := range queued {
			out = append(out, sockSample{at: time.Duration(i) * 100 * ms, queued: q, state: tcpEstablished})
		}
		return out
	}
	for _, c := range []struct {
		name    string
		samples []sockSample
		want    sockSummary
	}{
		{"full after 300ms", grow(0, 1000, 3000, 4200, 4200, 4200, 4200, 4200, 4200, 4200, 4200, 4200, 4200, 4200),
			sockSummary{peak: 4200, stall: 300 * ms, stalled: true}},
		{"still growing at the end", grow(0, 1000, 3000, 4200, 4200, 5000),
			sockSummary{peak: 5000}},
		{"nothing received", grow(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
			sockSummary{}},
		{"reset", append(grow(0, 1000, 2000), sockSample{at: 300 * ms, state: 7}, sockSample{at: 400 * ms, state: 7}),
			sockSummary{peak: 2000, closed: 300 * ms, state: 7, isClosed: true}},
		{"full, then closed", append(grow(0, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000), sockSample{at: 1300 * ms, queued: 1000, state: 8}),
			sockSummary{peak: 1000, stall: 100 * ms, stalled: true, closed: 1300 * ms, state: 8, isClosed: true}},
	} {
		if got := summarizeSocket(c.samples, time.Second); got != c.want {
			t.Errorf("%s: summarizeSocket = %+v; want %+v", c.name, got, c.want)
		}
	}
	if n := tcpStateName(8); n != "close-wait" {
		t.Errorf("tcpStateName(8) = %q", n)
	}
}

// apiSamples builds one sample per 250 ms with the given websocket counts
// and the queue depths of one session (-1: gone).
func apiSamples(conns []int64, queue []int) []apiSample {
	var out []apiSample
	for i := range max(len(conns), len(queue)) {
		s := apiSample{at: time.Duration(i) * 250 * time.Millisecond, sessions: make([]gatewaySession, 1), sessOK: []bool{true}}
		if i < len(conns) {
			s.ok, s.counts.WebsocketConnections = true, conns[i]
		}
		if i < len(queue) && queue[i] >= 0 {
			s.sessions[0] = gatewaySession{Found: true, State: "connected", QueueDepth: queue[i]}
		}
		out = append(out, s)
	}
	return out
}

func TestSummarizeSession(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name  string
		queue []int
		want  apiSessionSummary
	}{
		{"backlog then removed", []int{0, 2, 40, 0, 50, 300, 600, 900, -1, -1},
			apiSessionSummary{backlog: 1000 * ms, backed: true, maxQueue: 900, gone: 2000 * ms, isGone: true}},
		{"never backed up", []int{0, 5, 0, 30, 0},
			apiSessionSummary{maxQueue: 30}},
	} {
		if got := summarizeSession(apiSamples(nil, c.queue), 0, 30); got != c.want {
			t.Errorf("%s: summarizeSession = %+v; want %+v", c.name, got, c.want)
		}
	}
}

func TestUnexplainedCloses(t *testing.T) {
	ms := time.Millisecond
	// 43 connections; two healthy clients see their close at 500 ms and
	// 1.25 s; the paused one's is gone from the count at 1 s.
	samples := apiSamples([]int64{43, 43, 42, 42, 41, 40, 40, 40, 40, 40}, nil)
	got := unexplainedCloses(samples, []time.Duration{500 * ms, 1250 * ms}, 0)
	if want := []time.Duration{1000 * ms}; !reflect.DeepEqual(got, want) {
		t.Errorf("unexplainedCloses = %v; want %v", got, want)
	}
	// A client sees its close after the gateway counts it: slack covers that.
	if got := unexplainedCloses(samples, []time.Duration{600 * ms, 1300 * ms}, 100*ms); !reflect.DeepEqual(got, []time.Duration{1000 * ms}) {
		t.Errorf("unexplainedCloses with slack = %v; want [1s]", got)
	}
	// Every drop explained by a healthy client.
	if got := unexplainedCloses(apiSamples([]int64{10, 9, 8}, nil), []time.Duration{0, 300 * ms}, 0); len(got) != 0 {
		t.Errorf("unexplainedCloses, all explained = %v; want none", got)
	}
}

func TestSlowChecks(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	ok := &SlowReport{PausedClients: []PausedResult{{ClosedS: f(6), ClosedAfterStallS: f(3)}}}
	for _, c := range []struct {
		name     string
		rep      *SlowReport
		p99      float64
		baseline float64
		bound    time.Duration
		want     []string
	}{
		{"all well", ok, 10, 6, 5 * time.Second, nil},
		{"nothing checked", &SlowReport{PausedClients: []PausedResult{{}}}, 1000, 0, 0, nil},
		{"p99 over twice the baseline", ok, 12.5, 6, 0, []string{"healthy p99 12.50 ms > 2 × baseline 6.00 ms"}},
		{"drops", &SlowReport{HealthyDropped: 3}, 1, 0, 0, []string{"3 healthy sessions dropped"}},
		{"closed too late after the stall", ok, 1, 0, 2 * time.Second, []string{"paused subscriber 0 disconnected 3.0 s after its stall > 2s"}},
		{"no stall seen: from time 0", &SlowReport{PausedClients: []PausedResult{{ClosedS: f(6)}}}, 1, 0, 5 * time.Second,
			[]string{"paused subscriber 0 disconnected 6.0 s after it stopped reading > 5s"}},
		{"never closed", &SlowReport{PausedClients: []PausedResult{{}}}, 1, 0, time.Second, []string{"paused subscriber 0 not disconnected"}},
	} {
		if got := slowChecks(c.rep, c.p99, c.baseline, 2, c.bound); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: slowChecks = %q; want %q", c.name, got, c.want)
		}
	}
}

func TestPausedSettle(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name               string
		in                 PausedResult
		closed, afterStall *float64
	}{
		{"earliest sign, from the gateway's backlog", PausedResult{SocketFullS: f(0.3), BacklogS: f(2.3), SessionGoneS: f(5.5), ConnClosedS: f(8)}, f(5.5), f(3.2)},
		{"from the full socket without the API", PausedResult{SocketFullS: f(0.5), TCPClosedS: f(4)}, f(4), f(3.5)},
		{"no stall seen", PausedResult{ConnClosedS: f(9)}, f(9), nil},
		{"not closed", PausedResult{SocketFullS: f(0.5), BacklogS: f(2)}, nil, nil},
	} {
		p := c.in
		p.settle()
		if !reflect.DeepEqual(p.ClosedS, c.closed) || !reflect.DeepEqual(p.ClosedAfterStallS, c.afterStall) {
			t.Errorf("%s: settle() = closed %v, after stall %v; want %v, %v", c.name, fmtp(p.ClosedS), fmtp(p.ClosedAfterStallS), fmtp(c.closed), fmtp(c.afterStall))
		}
	}
}

func fmtp(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

func TestEndReason(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err  error
		want string
	}{
		{&websocket.CloseError{Code: 1000, Text: "Destroy"}, "close 1000 Destroy"},
		{&websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}, "eof"},
		{io.EOF, "eof"},
		{reset, "reset"},
		{timeout, "timeout"},
		{fmt.Errorf("odd"), "odd"},
	} {
		if got := endReason(c.err); got != c.want {
			t.Errorf("endReason(%v) = %q; want %q", c.err, got, c.want)
		}
	}
}

func TestEndNote(t *testing.T) {
	var n endNote
	if at, r := n.get(); !at.IsZero() || r != "" {
		t.Fatalf("empty note: %v %q", at, r)
	}
	for _, r := range []string{"advice reconnect none", "advice reconnect none", "close 1000 Destroy", "eof", "reset"} {
		n.note(r)
	}
	if at, r := n.get(); at.IsZero() || r != "advice reconnect none; close 1000 Destroy; eof" {
		t.Errorf("note.get() = %v, %q", at, r)
	}
	if l := n.last(); l != "eof" {
		t.Errorf("note.last() = %q; want eof", l)
	}
	var none *endNote
	none.note("ignored") // a nil note records nothing, without panicking
}

func TestReceiverGroup(t *testing.T) {
	st := newStats()
	st.winStart.Store(0)
	g := &slowGroup{channel: "/a"}
	rc := newReceiver(st, 0, 0, 1)
	rc.group = g
	t0 := int64(10_000_000_000)
	frame := func(sent, seq int64) []byte {
		return appendPayload([]byte(`[{"data":`), sent, seq, 0, 0)
	}
	sec := int64(time.Second)
	rc.frame(frame(t0-sec, 1), t0-sec+1000) // before time 0: not in the gaps nor the timeline
	g.t0.Store(t0)
	rc.frame(frame(t0+100, 2), t0+2_000_000)         // 2ms after time 0
	rc.frame(frame(t0+sec, 3), t0+sec+5_000_000)     // second 1, latency 5 ms
	rc.frame(frame(t0+sec, 4), t0+4*sec)             // second 4, latency 3 s, after a gap of ~3 s
	rc.frame(frame(t0+4*sec, 5), t0+4*sec+1_000_000) // second 4
	if got := rc.gapUntil(t0+4*sec+1_000_000, t0); got != 3*time.Second-5*time.Millisecond {
		t.Errorf("gap = %v; want 2.995s", got)
	}
	if got := rc.gapUntil(t0+9*sec, t0); got != 5*time.Second-time.Millisecond {
		t.Errorf("gap until 9 s = %v; want 4.999s (the time since the last delivery)", got)
	}
	if want := []int64{1, 1, 0, 0, 2}; !reflect.DeepEqual(g.tl.n, want) {
		t.Errorf("timeline counts %v; want %v", g.tl.n, want)
	}
	if g.tl.max[4] != 3*sec || g.tl.max[1] != 5_000_000 {
		t.Errorf("timeline max %v", g.tl.max)
	}
	if g.h.n != 5 {
		t.Errorf("group latencies: %d; want 5", g.h.n)
	}
	var all timeline
	all.merge(&g.tl)
	all.merge(&g.tl)
	if all.n[4] != 4 || all.max[4] != 3*sec {
		t.Errorf("merged timeline %v %v", all.n, all.max)
	}
}

func TestReadGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := newReadGate()
	g.wait(nil) // open: returns at once
	g.pause()
	passed := make(chan struct{})
	go func() {
		g.wait(nil)
		close(passed)
	}()
	select {
	case <-passed:
		t.Fatal("wait returned while the gate was shut")
	default:
	}
	if g.draining() {
		t.Error("draining before resume")
	}
	g.resume(0)
	select {
	case <-passed:
	case <-ctx.Done():
		t.Fatal("wait still blocked after resume")
	}
	if !g.draining() {
		t.Error("not draining after resume")
	}
	g.pause() // the end is final: no effect
	g.wait(nil)
	var none *readGate
	if none.draining() {
		t.Error("nil gate draining")
	}
}

func TestSlowTable(t *testing.T) {
	run := func(label string, paused int, p99 float64, closed *float64, end string) string {
		pc := ""
		if paused > 0 {
			c := "null"
			if closed != nil {
				c = fmt.Sprint(*closed)
			}
			pc = fmt.Sprintf(`,"paused_clients":[{"closed_s":%s,"end":%q}]`, c, end)
		}
		return fmt.Sprintf(`{"scenario":"slow","label":%q,"latency_ms":{"p99":%g},"lost":1,"slow":{"healthy":100,"paused":%d,"healthy_dropped":2,"healthy_max_gap_ms":50%s}}`,
			label, p99, paused, pc)
	}
	f := func(v float64) *float64 { return &v }
	in := strings.Join([]string{
		run("base", 0, 6, nil, ""),
		run("base", 0, 8, nil, ""),
		run("paused", 1, 20, f(5), "eof"),
		run("paused", 1, 30, nil, "open"),
		run("paused", 1, 40, f(7), "eof"),
		`{"scenario":"fanout","label":"other"}`,
	}, "\n")
	reps, err := readReports(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeSlowTable(&out, reps); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("slow table has %d lines; want a header and 2 rows:\n%s", len(lines), out.String())
	}
	for _, c := range []struct {
		line int
		want []string
	}{
		{1, []string{"base", "7.00", " 4 ", " - "}},
		{2, []string{"paused", "30.00", "6.0 (2/3)", "eof", " 6 "}},
	} {
		for _, w := range c.want {
			if !strings.Contains(lines[c.line], w) {
				t.Errorf("row %q lacks %q", lines[c.line], w)
			}
		}
	}
}
