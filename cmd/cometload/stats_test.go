package main

import (
	"math"
	"testing"
)

func TestBucketsCoverAndOrder(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64} {
		i := bucketOf(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d (previous %d)", v, i, prev)
		}
		prev = i
		mid := bucketValue(i)
		if v >= 64 && math.Abs(float64(mid-v))/float64(v) > 1.0/32 {
			t.Errorf("value %d reported as %d", v, mid)
		}
		if v < 64 && mid != v {
			t.Errorf("small value %d reported as %d", v, mid)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1µs … 100ms
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50_000_000}, {0.9, 90_000_000}, {0.99, 99_000_000}} {
		got := h.quantile(c.q)
		if math.Abs(float64(got-c.want))/float64(c.want) > 0.02 {
			t.Errorf("q%.2f = %d, want about %d", c.q, got, c.want)
		}
	}
	if h.max != 100_000_000 || h.quantile(1) != h.max {
		t.Errorf("max %d, q1 %d", h.max, h.quantile(1))
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}

func TestMergeAndShards(t *testing.T) {
	st := newStats()
	for i := range 1000 {
		st.recordLatency(i, 5_000_000)
	}
	st.recordLatency(3, 80_000_000)
	l := latencyMS(st.latencies())
	if l.N != 1001 || l.Max != 80 || l.P50 < 4.9 || l.P50 > 5.1 {
		t.Errorf("merged latencies: %+v", l)
	}
}

func TestReceiverCounts(t *testing.T) {
	st := newStats()
	st.winStart.Store(0)
	r := newReceiver(st, 0, 10, 2) // publishers 10 and 11
	var frame []byte
	frame = append(frame, '[')
	for _, m := range []marker{{100, 1, 10}, {100, 1, 11}, {100, 2, 10}, {100, 2, 10}, {100, 1, 12}} {
		frame = appendPayload(append(frame, `{"data":`...), m.t, m.s, m.c, 0)
		frame = append(frame, `},`...)
	}
	frame[len(frame)-1] = ']'
	r.frame(frame, 1100)
	got, dups, foreign := r.counts()
	if got != 5 || dups != 1 || foreign != 1 {
		t.Errorf("got %d, dups %d, foreign %d", got, dups, foreign)
	}
	if st.received.Load() != 5 || st.inWindow.Load() != 5 {
		t.Errorf("received %d, in window %d", st.received.Load(), st.inWindow.Load())
	}
	if l := latencyMS(st.latencies()); l.N != 5 || l.Max != 0.001 {
		t.Errorf("latencies %+v", l)
	}
}
