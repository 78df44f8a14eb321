package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Report is the result of one run, printed as the final JSON line.
type Report struct {
	Scenario        string           `json:"scenario"`
	Transport       string           `json:"transport"`
	URL             string           `json:"url"`
	Label           string           `json:"label,omitempty"`
	Clients         int              `json:"clients"` // sessions that opened
	Requested       int              `json:"clients_requested"`
	Rate            float64          `json:"rate,omitempty"`
	Size            int              `json:"size,omitempty"`
	RoomSize        int              `json:"room_size,omitempty"`
	Concurrency     int              `json:"concurrency,omitempty"`
	DurationS       float64          `json:"duration_s"`
	SetupS          float64          `json:"setup_s"`
	Sent            int64            `json:"sent"`
	Delivered       int64            `json:"delivered"`
	DeliveredPerSec float64          `json:"delivered_per_sec"`
	Expected        int64            `json:"expected"`
	Lost            int64            `json:"lost"`
	Duplicates      int64            `json:"duplicates"`
	Latency         LatencyMS        `json:"latency_ms"`
	Errors          int64            `json:"errors"`
	ErrorKinds      map[string]int64 `json:"error_kinds,omitempty"`
	ErrorSamples    []string         `json:"error_samples,omitempty"`
	ToolCPUPercent  float64          `json:"tool_cpu_percent"`
	// ServerCPUPercent is the server's CPU use over the window, with
	// -server-pid.
	ServerCPUPercent *float64 `json:"server_cpu_percent,omitempty"`
	BytesPerSession  *float64 `json:"bytes_per_session,omitempty"`
	RSSBefore        int64    `json:"rss_before,omitempty"`
	RSSAfter         int64    `json:"rss_after,omitempty"`
	RSSEnd           int64    `json:"rss_end,omitempty"`
	// ServerLongPoll is the gateway's own long-polling answer latency in
	// the window, with -api.
	ServerLongPoll *ServerAnswers `json:"server_long_poll_answer_ms,omitempty"`
}

// LatencyMS holds latency quantiles in milliseconds.
type LatencyMS struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   uint64  `json:"n"`
}

func latencyMS(h *histogram) LatencyMS {
	ms := func(ns int64) float64 { return float64(ns/1000) / 1000 }
	return LatencyMS{P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)), Max: ms(h.max), N: h.n}
}

// finish fills in the fields every scenario shares.
func (r *Report) finish(st *Stats) {
	r.Latency = latencyMS(st.latencies())
	r.Errors, r.ErrorKinds, r.ErrorSamples = st.errs.snapshot()
}

// write prints the human summary, then the JSON line.
func (r *Report) write(w io.Writer) error {
	fmt.Fprintf(w, "%s over %s: %d/%d sessions opened in %.1fs\n", r.Scenario, r.Transport, r.Clients, r.Requested, r.SetupS)
	fmt.Fprintf(w, "  sent %d, delivered %d (expected %d, lost %d, duplicates %d), %.0f/s over %.1fs\n",
		r.Sent, r.Delivered, r.Expected, r.Lost, r.Duplicates, r.DeliveredPerSec, r.DurationS)
	fmt.Fprintf(w, "  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (n=%d)\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.N)
	if r.BytesPerSession != nil {
		fmt.Fprintf(w, "  server RSS %s -> %s (end of hold %s): %.0f bytes per session\n",
			mib(r.RSSBefore), mib(r.RSSAfter), mib(r.RSSEnd), *r.BytesPerSession)
	}
	if a := r.ServerLongPoll; a != nil && a.Count > 0 {
		fmt.Fprintf(w, "  gateway's long-poll answers in the window: p50 <= %g  p90 <= %g  p99 <= %g ms, %.1f%% within 50 ms (n=%d; -1: over 1 s)\n",
			a.P50, a.P90, a.P99, a.Within50msPct, a.Count)
	}
	fmt.Fprintf(w, "  errors %d, tool CPU %.0f%%", r.Errors, r.ToolCPUPercent)
	if r.ServerCPUPercent != nil {
		fmt.Fprintf(w, ", server CPU %.0f%%", *r.ServerCPUPercent)
	}
	fmt.Fprintln(w)
	for _, k := range sortedKinds(r.ErrorKinds) {
		fmt.Fprintf(w, "    %-20s %d\n", k, r.ErrorKinds[k])
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "    e.g. %.200s\n", s)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
