package ratelimit_test

import (
	"context"
	"fmt"
	"github.com/cometgate/cometgate/internal/poll"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/ratelimit"
)

// slow is a rate at which a bucket refills one token in about 11 days:
// within a test, a bucket of n lets exactly n messages through.
const slow = "rate: 0.000001\n"

func decode(t testing.TB, opts string) *ratelimit.Filter {
	t.Helper()
	return filtertest.MustDecode(t, ratelimit.Modules(), "", "module: ratelimit\n"+opts).(*ratelimit.Filter)
}

func message(client, user, channel string) *plugins.Message {
	m := filtertest.Message(filtertest.Sample)
	m.Client = plugins.Client{ID: client, User: user}
	m.Channel = channel
	return m
}

func TestFilter(t *testing.T) {
	type step struct {
		client, user, channel string
		wantOK                bool
	}
	tests := []struct {
		name  string
		opts  string
		steps []step
	}{
		{"per session", slow + "burst: 2", []step{
			{"s1", "alice", "/a", true}, {"s1", "alice", "/b", true}, {"s1", "alice", "/a", false},
			{"s2", "alice", "/a", true}, {"s1", "", "/c", false},
		}},
		{"per user", slow + "burst: 2\nper: user", []step{
			{"s1", "alice", "/a", true}, {"s2", "alice", "/b", true}, {"s3", "alice", "/a", false},
			{"s4", "bob", "/a", true},
			// no user: per session, never sharing a user's bucket
			{"alice", "", "/a", true}, {"alice", "", "/a", true}, {"alice", "", "/a", false},
		}},
		{"per channel", slow + "burst: 1\nper: channel", []step{
			{"s1", "", "/a", true}, {"s2", "", "/a", false}, {"s1", "", "/b", true},
		}},
		{"server never limited", slow + "burst: 1\nper: channel", []step{
			{"", "", "/a", true}, {"", "", "/a", true}, {"s1", "", "/a", true}, {"s1", "", "/a", false}, {"", "", "/a", true},
		}},
		{"default burst", "rate: 2.5", []step{
			{"s1", "", "/a", true}, {"s1", "", "/a", true}, {"s1", "", "/a", true}, {"s1", "", "/a", false},
		}},
		{"default burst at least 1", slow, []step{
			{"s1", "", "/a", true}, {"s1", "", "/a", false},
		}},
		{"maxKeys", slow + "burst: 5\nmaxKeys: 2", []step{
			{"s1", "", "/a", true}, {"s2", "", "/a", true}, {"s3", "", "/a", false},
			{"s1", "", "/a", true}, {"s2", "", "/a", true}, {"s3", "", "/a", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decode(t, tt.opts)
			for i, s := range tt.steps {
				err := f.Filter(context.Background(), message(s.client, s.user, s.channel))
				if s.wantOK && err != nil || !s.wantOK && err != ratelimit.ErrRateLimited {
					t.Fatalf("step %d: Filter(client %q, user %q, %s) = %v; want ok %v", i, s.client, s.user, s.channel, err, s.wantOK)
				}
				if !s.wantOK {
					if r, ok := plugins.AsRejection(err); !ok || r.Error() != "429::rate_limited" {
						t.Fatalf("step %d: rejection %v; want 429::rate_limited", i, err)
					}
				}
			}
		})
	}
}

func TestMaxKeysCounts(t *testing.T) {
	f := decode(t, slow+"burst: 5\nmaxKeys: 2")
	for _, c := range []string{"s1", "s2", "s3", "s4", "s1"} {
		f.Filter(context.Background(), message(c, "", "/a"))
	}
	if f.Keys() != 2 || f.Refused() != 2 {
		t.Errorf("after 4 keys with maxKeys 2: Keys() = %d, Refused() = %d; want 2, 2", f.Keys(), f.Refused())
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts    string
		wantErr string // "" for none
	}{
		{"rate: 10", ""},
		{"rate: 0.5\nburst: 3\nper: user\nmaxKeys: 10\nidleTimeout: 30s", ""},
		{"rate: 1e12\nper: channel", ""},
		{"", "rate: 0: must be a number > 0"},
		{"rate: -1", "rate: -1: must be a number > 0"},
		{"rate: .nan", "rate: NaN: must be a number > 0"},
		{"rate: .inf", "rate: +Inf: must be a number > 0"},
		{"rate: 1\nburst: -1", "burst: -1: must be > 0"},
		{"rate: 1\nper: ip", `per: "ip": must be "session", "user" or "channel"`},
		{"rate: 1\nmaxKeys: -1", "maxKeys: -1: must be > 0"},
		{"rate: 1\nidleTimeout: -1s", "idleTimeout: -1s: must be > 0"},
		{"rate: 1\nidleTimeout: soon", "cannot unmarshal"},
		{"rate: 1\nburst: many", "cannot unmarshal"},
		{"rate: 1\nkey: user", "field key not found"},
	}
	for _, tt := range tests {
		_, err := filtertest.Decode(t, ratelimit.Modules(), "", "module: ratelimit\n"+tt.opts)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Decode(%q) error %v; want none", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Decode(%q) error %v; want one containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

// TestConcurrentOneKey checks that a bucket of n lets exactly n of many
// concurrent messages through.
func TestConcurrentOneKey(t *testing.T) {
	f := decode(t, slow+"burst: 100")
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if f.Filter(context.Background(), message("s1", "", "/a")) == nil {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 100 {
		t.Errorf("burst 100, 800 concurrent messages: %d passed; want 100", passed.Load())
	}
}

// TestConcurrentMaxKeys checks that concurrent new keys never grow the
// table past maxKeys, and that exactly maxKeys of them are admitted.
func TestConcurrentMaxKeys(t *testing.T) {
	const maxKeys, goroutines, perG = 50, 16, 20
	f := decode(t, slow+fmt.Sprintf("burst: 1\nmaxKeys: %d", maxKeys))
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				if f.Filter(context.Background(), message(fmt.Sprintf("s%d-%d", g, i), "", "/a")) == nil {
					passed.Add(1)
				}
				if k := f.Keys(); k > maxKeys {
					t.Errorf("Keys() = %d; want at most %d", k, maxKeys)
				}
			}
		}()
	}
	wg.Wait()
	if passed.Load() != maxKeys || f.Keys() != maxKeys || f.Refused() != goroutines*perG-maxKeys {
		t.Errorf("%d new keys, maxKeys %d: passed %d, Keys() %d, Refused() %d; want %d, %d, %d",
			goroutines*perG, maxKeys, passed.Load(), f.Keys(), f.Refused(), maxKeys, maxKeys, goroutines*perG-maxKeys)
	}
}

// TestSweeper checks that the sweeper goroutine drops idle limiters.
func TestSweeper(t *testing.T) {
	f := decode(t, "rate: 1000\nburst: 1\nidleTimeout: 20ms")
	for i := range 10 {
		if err := f.Filter(context.Background(), message(fmt.Sprint("s", i), "", "/a")); err != nil {
			t.Fatal(err)
		}
	}
	if f.Keys() != 10 {
		t.Fatalf("Keys() = %d; want 10", f.Keys())
	}
	poll.Eventually(t, 10*time.Second, func() error {
		if k := f.Keys(); k != 0 {
			return fmt.Errorf("Keys() = %d; want the idle limiters dropped", k)
		}
		return nil
	})
	if err := f.Filter(context.Background(), message("s1", "", "/a")); err != nil || f.Keys() != 1 {
		t.Errorf("after the sweep: Filter = %v, Keys() = %d; want nil, 1", err, f.Keys())
	}
}

func BenchmarkFilter(b *testing.B) {
	ctx := context.Background()
	b.Run("Pass/OneKey", func(b *testing.B) {
		f := decode(b, "rate: 1e12\nburst: 1000000")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			m := message("s1", "", "/chat/general")
			for pb.Next() {
				if f.Filter(ctx, m) != nil {
					b.Error("rate limited")
					return
				}
			}
		})
	})
	b.Run("Pass/ManyKeys", func(b *testing.B) {
		f := decode(b, "rate: 1e12\nburst: 1000000")
		var g atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := g.Add(1)
			msgs := make([]*plugins.Message, 1000)
			for i := range msgs {
				msgs[i] = message(fmt.Sprintf("session-%d-%d", n, i), "", "/chat/general")
			}
			for i := 0; pb.Next(); i++ {
				if f.Filter(ctx, msgs[i%len(msgs)]) != nil {
					b.Error("rate limited")
					return
				}
			}
		})
	})
	b.Run("Reject", func(b *testing.B) {
		f := decode(b, slow+"burst: 1")
		f.Filter(ctx, message("s1", "", "/chat/general"))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			m := message("s1", "", "/chat/general")
			for pb.Next() {
				if f.Filter(ctx, m) == nil {
					b.Error("not rate limited")
					return
				}
			}
		})
	})
	b.Run("RejectNewKey", func(b *testing.B) {
		f := decode(b, slow+"burst: 1\nmaxKeys: 1")
		f.Filter(ctx, message("s1", "", "/chat/general"))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			m := message("s2", "", "/chat/general")
			for pb.Next() {
				if f.Filter(ctx, m) == nil {
					b.Error("not refused")
					return
				}
			}
		})
	})
}
