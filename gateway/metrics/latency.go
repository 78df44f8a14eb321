package metrics

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// answerBuckets are the upper bounds, in seconds, of the long-poll answer
// histogram's buckets (the control API's Stats lists them); callBuckets,
// of the remote-call histogram's, which go on to the longest call timeouts.
var (
	answerBuckets = []float64{.001, .002, .005, .01, .02, .03, .04, .05, .075, .1, .15, .2, .3, .5, .75, 1}
	callBuckets   = append(answerBuckets[:len(answerBuckets):len(answerBuckets)], 2.5, 5, 10, 30)
)

// Latency is a histogram of durations that also keeps their maximum, so
// that it can be summarised (Summary) as well as scraped.
type Latency struct {
	h   prometheus.Histogram
	max atomic.Int64 // nanoseconds
}

func newLatency(opts prometheus.HistogramOpts) *Latency {
	opts.Buckets = answerBuckets
	return &Latency{h: prometheus.NewHistogram(opts)}
}

// Observe records one duration; negative ones count as zero.
func (l *Latency) Observe(d time.Duration) {
	d = max(d, 0)
	l.h.Observe(d.Seconds())
	for {
		m := l.max.Load()
		if int64(d) <= m || l.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// LatencySummary describes a Latency histogram. Quantiles are the upper
// bounds of their buckets (so above the true value by at most the bucket's
// width), never more than the maximum; past the last bucket they are the
// maximum. Buckets are cumulative counts at fixed bounds, so that two
// summaries taken apart can be subtracted.
type LatencySummary struct {
	Count         int64
	P50, P90, P99 time.Duration
	Max           time.Duration
	Buckets       []Bucket
}

// Bucket counts the durations at most Upper.
type Bucket struct {
	Upper time.Duration
	Count int64
}

// Summary computes the current summary.
func (l *Latency) Summary() LatencySummary {
	var m dto.Metric
	l.h.Write(&m) // a histogram's Write cannot fail
	h := m.GetHistogram()
	s := LatencySummary{Count: int64(h.GetSampleCount()), Max: time.Duration(l.max.Load())}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		s.Buckets = append(s.Buckets, Bucket{Upper: seconds(b.GetUpperBound()), Count: int64(b.GetCumulativeCount())})
	}
	if s.Count == 0 {
		return s
	}
	quantile := func(q float64) time.Duration {
		rank := int64(q*float64(s.Count-1)) + 1 // 1-based rank of the quantile
		for _, b := range s.Buckets {
			if b.Count >= rank {
				return min(b.Upper, s.Max)
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99 = quantile(0.50), quantile(0.90), quantile(0.99)
	return s
}

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }
