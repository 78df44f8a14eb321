package latency

import (
	"sync"
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	var h Histogram
	if s := h.Summary(); s.Count != 0 || s.Max != 0 || s.P99 != 0 || len(s.Buckets) != len(Bounds) || s.Buckets[len(Bounds)-1].Count != 0 {
		t.Fatalf("empty summary = %+v", s)
	}
	// 1..100 ms, once each; then one 3 s outlier.
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i)*time.Millisecond - time.Microsecond)
	}
	s := h.Summary()
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond-time.Microsecond {
		t.Errorf("summary = %+v", s)
	}
	// Below 1 ms: 1 (0.999); below 50 ms: 50 (0.999 ... 49.999); below 100 ms: all.
	want := map[time.Duration]int64{time.Millisecond: 1, 50 * time.Millisecond: 50, 100 * time.Millisecond: 100, time.Second: 100}
	for _, b := range s.Buckets {
		if n, ok := want[b.Upper]; ok && b.Count != n {
			t.Errorf("bucket < %v counts %d; want %d", b.Upper, b.Count, n)
		}
	}
	h.Record(3 * time.Second)
	h.Record(-time.Second) // counted as 0
	s = h.Summary()
	if s.Count != 102 || s.Max != 3*time.Second {
		t.Errorf("after outliers: %+v", s)
	}
}

func TestQuantileNeverAboveMax(t *testing.T) {
	var h Histogram
	h.Record(300 * time.Microsecond)
	if s := h.Summary(); s.P50 != 300*time.Microsecond || s.P99 != 300*time.Microsecond {
		t.Errorf("summary = %+v; quantiles capped at the maximum", s)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if s := h.Summary(); s.Count != 8000 || s.Max != 7999*time.Microsecond {
		t.Errorf("summary = %+v", s)
	}
}
