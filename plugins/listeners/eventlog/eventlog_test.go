package eventlog

import (
	"context"
	"fmt"
	"github.com/cometgate/cometgate/internal/poll"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

// recorder is a slog.Handler keeping what is logged at or above min.
type recorder struct {
	min  slog.Level
	mu   sync.Mutex
	recs []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.min }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *recorder) WithGroup(string) slog.Handler                { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, record{rec.Level, rec.Message, attrs})
	r.mu.Unlock()
	return nil
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newListener decodes options strictly and provisions a Listener logging
// to a recorder of level min, with clock now.
func newListener(t *testing.T, opts string, min slog.Level, now func() time.Time) (*Listener, *recorder) {
	t.Helper()
	l := new(Listener)
	dec := yaml.NewDecoder(strings.NewReader(opts))
	dec.KnownFields(true)
	if err := dec.Decode(l); err != nil && opts != "" {
		t.Fatalf("options: %v", err)
	}
	l.now = now
	rec := &recorder{min: min}
	if err := l.Provision(&plugins.Context{Context: context.Background(), Logger: slog.New(rec)}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return l, rec
}

var alice = plugins.Client{ID: "c1", User: "alice", Transport: "websocket", RemoteAddr: "127.0.0.1:5000"}

func TestEvents(t *testing.T) {
	l, rec := newListener(t, "level: warn", slog.LevelInfo, time.Now)
	l.SessionAdded(alice)
	l.Subscribed(alice, "/chat/a", 1)
	l.Unsubscribed(alice, "/chat/a", 0)
	l.QueueMaxed(alice, 1000)
	l.SessionRemoved(alice, "slow")
	want := []struct {
		msg   string
		attrs map[string]string
	}{
		{"session added", map[string]string{"client": "c1", "user": "alice", "transport": "websocket", "remote": "127.0.0.1:5000"}},
		{"subscribed", map[string]string{"client": "c1", "channel": "/chat/a", "subscribers": "1"}},
		{"unsubscribed", map[string]string{"channel": "/chat/a", "subscribers": "0"}},
		{"queue maxed", map[string]string{"client": "c1", "queued": "1000"}},
		{"session removed", map[string]string{"client": "c1", "reason": "slow"}},
	}
	got := rec.records()
	if len(got) != len(want) {
		t.Fatalf("logged %d lines; want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].msg != w.msg || got[i].level != slog.LevelWarn {
			t.Errorf("line %d = %s %q; want WARN %q", i, got[i].level, got[i].msg, w.msg)
		}
		for k, v := range w.attrs {
			if got[i].attrs[k] != v {
				t.Errorf("line %d %q: %s = %q; want %q", i, w.msg, k, got[i].attrs[k], v)
			}
		}
	}
}

func TestLevelAndEvents(t *testing.T) {
	l, rec := newListener(t, "", slog.LevelWarn, time.Now) // info by default, below the handler's level
	l.SessionAdded(alice)
	l.QueueMaxed(alice, 1)
	if got := rec.records(); len(got) != 0 {
		t.Errorf("info lines under a warn handler: %v", got)
	}
	if l.suppressed != [numEvents]int64{} {
		t.Errorf("disabled lines counted as suppressed: %v", l.suppressed)
	}
	l, rec = newListener(t, "events: [queues]\nlevel: debug", slog.LevelDebug, time.Now)
	l.SessionAdded(alice)
	l.Subscribed(alice, "/a", 1)
	l.QueueMaxed(alice, 1)
	if got := rec.records(); len(got) != 1 || got[0].msg != "queue maxed" || got[0].level != slog.LevelDebug {
		t.Errorf("events: [queues] logged %v; want one DEBUG queue maxed", got)
	}
}

// Over maxPerSecond, events are counted, and summarised when the next
// second's first event comes, at the end of the second, or at Cleanup.
func TestRateLimit(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	l, rec := newListener(t, "maxPerSecond: 3", slog.LevelInfo, clk.Now)
	for range 6 {
		l.SessionAdded(alice)
	}
	for range 4 {
		l.Subscribed(alice, "/a", 1)
	}
	if got := len(rec.records()); got != 3 {
		t.Fatalf("lines in the first second = %d; want 3", got)
	}
	clk.Advance(time.Second)
	l.SessionRemoved(alice, "disconnect")
	got := rec.records()
	if len(got) != 5 {
		t.Fatalf("lines = %d; want 5 (3, a summary, 1): %v", len(got), got)
	}
	sum := got[3]
	if !strings.Contains(sum.msg, "not logged") || sum.attrs["total"] != "7" || sum.attrs["session_added"] != "3" || sum.attrs["subscribed"] != "4" {
		t.Errorf("summary = %q %v; want total 7, session_added 3, subscribed 4", sum.msg, sum.attrs)
	}
	if got[4].msg != "session removed" {
		t.Errorf("line after the summary = %q; want session removed", got[4].msg)
	}

	// With no later event, the summary comes at the end of the second.
	l.QueueMaxed(alice, 1)
	l.QueueMaxed(alice, 1)
	l.QueueMaxed(alice, 1) // over: 3 lines in this second already
	poll.Eventually(t, 5*time.Second, func() error {
		recs := rec.records()
		last := recs[len(recs)-1]
		if last.attrs["queue_maxed"] != "1" {
			return fmt.Errorf("last line %q %v", last.msg, last.attrs)
		}
		return nil
	})

	// And at Cleanup (or at the end of the second, if that comes first).
	n := len(rec.records())
	l.Unsubscribed(alice, "/a", 0)
	l.Cleanup()
	recs := rec.records()
	if len(recs) != n+1 || recs[n].attrs["unsubscribed"] != "1" {
		t.Errorf("Cleanup wrote %v; want a summary of 1 unsubscribed", recs[n:])
	}
}

// Concurrent events: at most maxPerSecond lines in a second, and every
// event either logged or counted.
func TestRateLimitConcurrent(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	l, rec := newListener(t, "maxPerSecond: 10", slog.LevelInfo, clk.Now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				l.Subscribed(alice, "/a", 1)
			}
		})
	}
	wg.Wait()
	if got := len(rec.records()); got != 10 {
		t.Fatalf("lines = %d; want 10", got)
	}
	l.Cleanup()
	total := 0
	for _, r := range rec.records() {
		var n int
		fmt.Sscan(r.attrs["total"], &n)
		total += n
	}
	if total != 390 {
		t.Errorf("events summarised = %d; want 390", total)
	}
}

func TestOptions(t *testing.T) {
	reg := plugins.NewRegistry()
	for _, m := range Modules() {
		reg.MustRegister(m)
	}
	tests := []struct {
		yaml string
		want string // "" for success
	}{
		{"module: log", ""},
		{"module: log\nlevel: debug\nmaxPerSecond: 5\nevents: [sessions, subscriptions, queues]", ""},
		{"module: log\nlevel: loud", `"loud"`},
		{"module: log\nmaxPerSecond: -1", "maxPerSecond"},
		{"module: log\nevents: [channels]", `"channels"`},
		{"module: log\nlevels: info", "levels"},
	}
	for _, tt := range tests {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &n); err != nil {
			t.Fatal(err)
		}
		_, m, err := reg.Decode(&plugins.Context{Context: context.Background()}, plugins.KindListener, n.Content[0])
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: err = %v; want one containing %q", tt.yaml, err, tt.want)
		}
		if m != nil {
			m.(plugins.CleanerUpper).Cleanup()
		}
	}
}

func BenchmarkSubscribed(b *testing.B) {
	for _, bc := range []struct {
		name string
		max  int
	}{{"logged", 1 << 30}, {"over-limit", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			l := &Listener{MaxPerSecond: bc.max}
			h := slog.NewJSONHandler(discard{}, nil)
			if err := l.Provision(&plugins.Context{Context: context.Background(), Logger: slog.New(h)}); err != nil {
				b.Fatal(err)
			}
			defer l.Cleanup()
			b.ReportAllocs()
			for b.Loop() {
				l.Subscribed(alice, "/chat/room", 3)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
