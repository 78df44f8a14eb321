package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// serverLatency is the gateway's own long-polling delivery latency, as
// its control API reports it (Stats.long_poll_answer, protojson): from a
// message being queued for a held connect to that connect's response
// being written, since the gateway started, with cumulative buckets.
type serverLatency struct {
	Count   int64   `json:"count,string"`
	P50     float64 `json:"p50Ms"`
	P90     float64 `json:"p90Ms"`
	P99     float64 `json:"p99Ms"`
	Max     float64 `json:"maxMs"`
	Buckets []struct {
		Upper float64 `json:"upperMs"`
		Count int64   `json:"count,string"`
	} `json:"buckets"`
}

// ServerAnswers is what the report says of the gateway's long-polling
// answers during the measured window: quantiles at the resolution of the
// gateway's buckets (the smallest bound that many answers beat; -1 past
// the last, 1 s), and the share answered within 50 ms.
type ServerAnswers struct {
	Count         int64   `json:"count"`
	P50           float64 `json:"p50_at_most"`
	P90           float64 `json:"p90_at_most"`
	P99           float64 `json:"p99_at_most"`
	Within50msPct float64 `json:"within_50ms_percent"`
	// SinceStartMaxMs is the longest answer since the gateway started
	// (warm-up included: the API keeps no window).
	SinceStartMaxMs float64 `json:"since_start_max"`
}

// fetchServerLatency reads Stats from a Cometgate control API (REST) at
// base, such as http://127.0.0.1:8081.
func fetchServerLatency(ctx context.Context, base, token string) (*serverLatency, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/stats", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server stats: %s", resp.Status)
	}
	var st struct {
		LongPollAnswer serverLatency `json:"longPollAnswer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("server stats: %w", err)
	}
	return &st.LongPollAnswer, nil
}

// answersBetween describes the answers counted between two snapshots
// (before may be nil: since the start). A quantile past the last bucket
// (1 s) is reported as -1.
func answersBetween(before, after *serverLatency) *ServerAnswers {
	out := &ServerAnswers{SinceStartMaxMs: after.Max}
	base := func(i int) int64 {
		if before == nil || i >= len(before.Buckets) {
			return 0
		}
		return before.Buckets[i].Count
	}
	out.Count = after.Count
	if before != nil {
		out.Count -= before.Count
	}
	if out.Count <= 0 {
		out.Count = 0
		return out
	}
	quantile := func(q float64) float64 {
		need := int64(math.Ceil(q * float64(out.Count)))
		for i, b := range after.Buckets {
			if b.Count-base(i) >= need {
				return b.Upper
			}
		}
		return -1
	}
	out.P50, out.P90, out.P99 = quantile(0.5), quantile(0.9), quantile(0.99)
	for i, b := range after.Buckets {
		if b.Upper == 50 {
			out.Within50msPct = math.Round(1000*float64(b.Count-base(i))/float64(out.Count)) / 10
		}
	}
	return out
}
