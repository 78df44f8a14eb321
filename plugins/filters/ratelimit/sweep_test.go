package ratelimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// provisioned returns f provisioned with clock c and a logger writing to
// log, cleaned up when t ends.
func provisioned(t *testing.T, f *Filter, c *fakeClock, log *bytes.Buffer) *Filter {
	t.Helper()
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	f.now = c.now
	ctx := &plugins.Context{Context: context.Background(), Logger: slog.New(slog.NewTextHandler(log, nil))}
	if err := f.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { f.Cleanup() })
	return f
}

func allow(f *Filter, client string) bool {
	m := &plugins.Message{Channel: "/a", Client: plugins.Client{ID: client}}
	return f.Filter(context.Background(), m) == nil
}

func TestRefill(t *testing.T) {
	var c fakeClock
	f := provisioned(t, &Filter{Rate: 2, Burst: 2, IdleTimeout: time.Hour}, &c, new(bytes.Buffer))
	want := []struct {
		advance time.Duration
		ok      bool
	}{{0, true}, {0, true}, {0, false}, {250 * time.Millisecond, false}, {250 * time.Millisecond, true}, {0, false}, {10 * time.Second, true}, {0, true}, {0, false}}
	for i, w := range want {
		c.advance(w.advance)
		if got := allow(f, "s1"); got != w.ok {
			t.Fatalf("step %d (+%v): Filter ok = %v; want %v", i, w.advance, got, w.ok)
		}
	}
}

// TestSweep checks what a sweep drops: limiters idle for IdleTimeout
// whose buckets have refilled, and nothing else.
func TestSweep(t *testing.T) {
	var c fakeClock
	// 0.01/s: a bucket of 1 refills in 100s, more than IdleTimeout.
	f := provisioned(t, &Filter{Rate: 0.01, Burst: 1, IdleTimeout: time.Minute}, &c, new(bytes.Buffer))
	allow(f, "spent") // bucket empty
	c.advance(30 * time.Second)
	allow(f, "recent")
	f.sweep(c.now())
	if f.Keys() != 2 {
		t.Fatalf("sweep before IdleTimeout: Keys() = %d; want 2", f.Keys())
	}
	c.advance(40 * time.Second) // spent: idle 70s, bucket 0.7
	f.sweep(c.now())
	if f.Keys() != 2 || allow(f, "spent") {
		t.Fatalf("sweep of an idle limiter not yet refilled: Keys() = %d; want 2 and it still limiting", f.Keys())
	}
	c.advance(101 * time.Second) // both idle and refilled
	f.sweep(c.now())
	if f.Keys() != 0 {
		t.Fatalf("sweep of idle, refilled limiters: Keys() = %d; want 0", f.Keys())
	}
}

func TestSweepWarnsOnRefusals(t *testing.T) {
	var c fakeClock
	var log bytes.Buffer
	f := provisioned(t, &Filter{Rate: 1, MaxKeys: 1}, &c, &log)
	allow(f, "s1")
	for range 3 {
		if allow(f, "s2") {
			t.Fatal("a new key past MaxKeys passed")
		}
	}
	f.sweep(c.now())
	if !strings.Contains(log.String(), "refused=3") {
		t.Errorf("log after 3 refusals: %q; want a warning with refused=3", log.String())
	}
	log.Reset()
	f.sweep(c.now())
	if log.Len() != 0 {
		t.Errorf("log after no new refusal: %q; want none", log.String())
	}
}

func TestCleanup(t *testing.T) {
	// after a Provision that failed: nothing to stop
	f := &Filter{Rate: -1}
	if err := f.Provision(&plugins.Context{Context: context.Background()}); err == nil {
		t.Fatal("Provision with rate -1: nil error")
	}
	if err := f.Cleanup(); err != nil {
		t.Errorf("Cleanup after a failed Provision = %v", err)
	}

	f = &Filter{Rate: 1, IdleTimeout: time.Millisecond}
	if err := f.Provision(&plugins.Context{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	f.Cleanup()
	select {
	case <-f.done:
	default:
		t.Error("Cleanup returned before the sweeper")
	}
	if err := f.Cleanup(); err != nil {
		t.Errorf("second Cleanup = %v", err)
	}
}

// TestConcurrentSweep runs messages with many keys against a sweeper
// sweeping as often as it can: the table stays within MaxKeys and its
// count matches its contents.
func TestConcurrentSweep(t *testing.T) {
	const maxKeys = 64
	f := &Filter{Rate: 1e6, Burst: 1, MaxKeys: maxKeys, IdleTimeout: time.Nanosecond}
	if err := f.Provision(&plugins.Context{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				allow(f, fmt.Sprintf("s%d", (g*2000+i)%200))
				if k := f.Keys(); k > maxKeys || k < 0 {
					t.Errorf("Keys() = %d; want 0 to %d", k, maxKeys)
					return
				}
			}
		}()
	}
	wg.Wait()
	f.Cleanup()
	n := 0
	for i := range f.shards {
		n += len(f.shards[i].m)
	}
	if n != f.Keys() {
		t.Errorf("the shards hold %d limiters; Keys() = %d", n, f.Keys())
	}
}
