// Package latency keeps a histogram of durations that many goroutines
// record into without locks, and summarises it.
package latency

import (
	"sync/atomic"
	"time"
)

// buckets is the number of 1 ms buckets; longer durations share the last.
const buckets = 1000

// Histogram counts durations in 1 ms buckets up to 1 s; the zero value is
// ready to use. Recording is two atomic additions and an atomic maximum.
type Histogram struct {
	counts [buckets + 1]atomic.Int64
	max    atomic.Int64 // nanoseconds
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[min(int(d/time.Millisecond), buckets)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Summary describes a histogram. Quantiles are the upper bounds of their
// 1 ms buckets (so within 1 ms above the true value); past 1 s they are
// the maximum. Buckets are cumulative counts at fixed bounds (Bounds), so
// that two summaries taken apart can be subtracted to describe what
// happened in between.
type Summary struct {
	Count         int64
	P50, P90, P99 time.Duration
	Max           time.Duration
	Buckets       []Bucket
}

// Bucket counts the durations shorter than Upper.
type Bucket struct {
	Upper time.Duration
	Count int64
}

// Bounds are the upper bounds of Summary.Buckets.
var Bounds = []time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond,
	40 * time.Millisecond, 50 * time.Millisecond, 75 * time.Millisecond,
	100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond,
	300 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond,
	time.Second,
}

// Summary computes the current summary.
func (h *Histogram) Summary() Summary {
	var counts [buckets + 1]int64
	var s Summary
	for i := range counts {
		counts[i] = h.counts[i].Load()
		s.Count += counts[i]
	}
	s.Max = time.Duration(h.max.Load())
	s.Buckets = make([]Bucket, len(Bounds))
	var below int64
	next := 0 // the 1 ms bucket to add next
	for i, b := range Bounds {
		for ; next < int(b/time.Millisecond); next++ {
			below += counts[next]
		}
		s.Buckets[i] = Bucket{Upper: b, Count: below}
	}
	if s.Count == 0 {
		return s
	}
	quantile := func(q float64) time.Duration {
		rank := int64(q*float64(s.Count-1)) + 1 // 1-based rank of the quantile
		var seen int64
		for i, c := range counts {
			if seen += c; seen >= rank {
				if i == buckets {
					return s.Max
				}
				return min(time.Duration(i+1)*time.Millisecond, s.Max)
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99 = quantile(0.50), quantile(0.90), quantile(0.99)
	return s
}
