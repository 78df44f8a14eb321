package main

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// histogram is a log-linear histogram of non-negative int64 values
// (nanoseconds here): exact below 64, then 32 buckets per power of two,
// so any recorded value is reported within about 1.6%. Recording is a
// few instructions and allocates nothing.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
}

const (
	histSub     = 32                     // buckets per power of two
	histBuckets = 2*histSub + 57*histSub // covers the whole int64 range
)

// bucketOf returns the bucket index of v.
func bucketOf(v int64) int {
	if v < 2*histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 6 // v>>shift is in [32, 63]
	return 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
}

// bucketValue returns the middle of bucket i's value range.
func bucketValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := (i-2*histSub)/histSub + 1
	top := int64((i-2*histSub)%histSub + histSub)
	low := top << shift
	return low + (int64(1)<<shift-1)/2
}

func (h *histogram) record(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q in [0, 1]; 0 for an empty
// histogram. The result never exceeds the largest recorded value.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}

// latencyShard is one lock-protected part of the run's latencies.
// Receivers are spread over shards so that readers rarely contend.
type latencyShard struct {
	mu sync.Mutex
	h  histogram
}

const latencyShards = 16

// Stats gathers everything a run measures. Its methods are safe for
// concurrent use.
type Stats struct {
	shards [latencyShards]latencyShard

	// The measurement window, in Unix ns: latencies are kept for messages
	// sent inside it, throughput counts deliveries received inside it.
	winStart, winEnd atomic.Int64

	received atomic.Int64 // every payload received, for draining
	inWindow atomic.Int64 // payloads received inside the window

	errs errorLog
}

func newStats() *Stats {
	s := &Stats{}
	s.winStart.Store(math.MaxInt64)
	s.winEnd.Store(math.MaxInt64)
	return s
}

func (s *Stats) shard(i int) *latencyShard { return &s.shards[i%latencyShards] }

func (s *Stats) window() (start, end int64) { return s.winStart.Load(), s.winEnd.Load() }

// recordLatency records one latency, for callers outside the receivers
// (remote calls).
func (s *Stats) recordLatency(i int, d time.Duration) {
	sh := s.shard(i)
	sh.mu.Lock()
	sh.h.record(int64(d))
	sh.mu.Unlock()
}

// latencies merges the shards.
func (s *Stats) latencies() *histogram {
	var h histogram
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		h.merge(&sh.h)
		sh.mu.Unlock()
	}
	return &h
}

// errorLog counts errors by kind and keeps the first few messages.
type errorLog struct {
	mu      sync.Mutex
	kinds   map[string]int64
	samples []string
	total   int64
}

const maxErrorSamples = 8

// add records one error of the given kind; detail may be empty.
func (l *errorLog) add(kind, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]int64{}
	}
	l.kinds[kind]++
	l.total++
	if len(l.samples) < maxErrorSamples {
		s := kind
		if detail != "" {
			s += ": " + detail
		}
		l.samples = append(l.samples, s)
	}
}

func (l *errorLog) snapshot() (total int64, kinds map[string]int64, samples []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds = make(map[string]int64, len(l.kinds))
	for k, v := range l.kinds {
		kinds[k] = v
	}
	return l.total, kinds, append([]string(nil), l.samples...)
}

// sortedKinds lists error kinds by decreasing count.
func sortedKinds(kinds map[string]int64) []string {
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if kinds[ks[i]] != kinds[ks[j]] {
			return kinds[ks[i]] > kinds[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// cpuClock reads this process's CPU time (user + system).
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures this process's CPU use over a stretch of wall time.
type cpuMeter struct {
	wall time.Time
	cpu  time.Duration
}

func startCPU() cpuMeter { return cpuMeter{wall: time.Now(), cpu: cpuClock()} }

// percent returns CPU time / wall time × 100 since the meter started.
func (m cpuMeter) percent() float64 {
	wall := time.Since(m.wall)
	if wall <= 0 {
		return 0
	}
	return float64(cpuClock()-m.cpu) / float64(wall) * 100
}
