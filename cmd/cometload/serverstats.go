package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
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
	var st struct {
		LongPollAnswer serverLatency `json:"longPollAnswer"`
	}
	if _, err := apiGet(ctx, base, token, "/v1/stats", &st); err != nil {
		return nil, fmt.Errorf("server stats: %w", err)
	}
	return &st.LongPollAnswer, nil
}

// gatewayCounts is the part of the control API's Stats (protojson: int64
// as strings) that the slow scenario follows.
type gatewayCounts struct {
	WebsocketConnections int64 `json:"websocketConnections,string"`
	DroppedSlow          int64 `json:"droppedSlow,string"`
	Expired              int64 `json:"expired,string"`
}

// fetchGatewayCounts reads the gateway's counters from its control API.
func fetchGatewayCounts(ctx context.Context, base, token string) (gatewayCounts, error) {
	var st gatewayCounts
	if _, err := apiGet(ctx, base, token, "/v1/stats", &st); err != nil {
		return gatewayCounts{}, fmt.Errorf("server stats: %w", err)
	}
	return st, nil
}

// gatewaySession is the part of the control API's Session the slow
// scenario follows; Found is false once the gateway has removed it.
type gatewaySession struct {
	Found      bool   `json:"-"`
	State      string `json:"state"`
	QueueDepth int    `json:"queueDepth"`
}

// fetchGatewaySession describes session id from the control API.
func fetchGatewaySession(ctx context.Context, base, token, id string) (gatewaySession, error) {
	var s gatewaySession
	code, err := apiGet(ctx, base, token, "/v1/sessions/"+url.PathEscape(id), &s)
	if code == http.StatusNotFound {
		return gatewaySession{}, nil
	}
	if err != nil {
		return gatewaySession{}, fmt.Errorf("session %s: %w", id, err)
	}
	s.Found = true
	return s, nil
}

// apiGet decodes the JSON answer to a GET of path from the control API at
// base into v. It returns the HTTP status, and an error unless it is 200.
func apiGet(ctx context.Context, base, token, path string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, errors.New(resp.Status)
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
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
