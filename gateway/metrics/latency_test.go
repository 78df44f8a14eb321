package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func testLatency() *Latency {
	return newLatency(prometheus.HistogramOpts{Name: "test_seconds", Help: "test"})
}

func TestLatencySummary(t *testing.T) {
	l := testLatency()
	if s := l.Summary(); s.Count != 0 || s.Max != 0 || s.P99 != 0 || len(s.Buckets) != len(answerBuckets) || s.Buckets[len(s.Buckets)-1].Count != 0 {
		t.Fatalf("empty summary = %+v", s)
	}
	// 1..100 ms less 1 µs, once each.
	for i := 1; i <= 100; i++ {
		l.Observe(time.Duration(i)*time.Millisecond - time.Microsecond)
	}
	s := l.Summary()
	maxD := 100*time.Millisecond - time.Microsecond
	// The 50th value (49.999 ms) is in the bucket up to 50 ms; the 90th
	// and 99th in the one up to 100 ms, capped at the maximum.
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P90 != maxD || s.P99 != maxD || s.Max != maxD {
		t.Errorf("summary = %+v", s)
	}
	want := map[time.Duration]int64{time.Millisecond: 1, 50 * time.Millisecond: 50, 75 * time.Millisecond: 75, 100 * time.Millisecond: 100, time.Second: 100}
	for _, b := range s.Buckets {
		if n, ok := want[b.Upper]; ok && b.Count != n {
			t.Errorf("bucket <= %v counts %d; want %d", b.Upper, b.Count, n)
		}
	}
	l.Observe(30 * time.Second) // past the last bucket
	l.Observe(-time.Second)     // counted as 0
	s = l.Summary()
	if s.Count != 102 || s.Max != 30*time.Second || s.Buckets[0].Count != 2 {
		t.Errorf("after outliers: %+v", s)
	}
}

func TestLatencyQuantileNeverAboveMax(t *testing.T) {
	l := testLatency()
	l.Observe(300 * time.Microsecond)
	if s := l.Summary(); s.P50 != 300*time.Microsecond || s.P99 != 300*time.Microsecond {
		t.Errorf("summary = %+v; quantiles capped at the maximum", s)
	}
}

func TestLatencyConcurrentObserve(t *testing.T) {
	l := testLatency()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				l.Observe(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if s := l.Summary(); s.Count != 8000 || s.Max != 7999*time.Microsecond {
		t.Errorf("summary = %+v", s)
	}
}
