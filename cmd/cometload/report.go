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
	PubURL          string           `json:"pub_url,omitempty"` // publishers' endpoint(s), when not the url
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
	// NodeCPUPercent is each server's CPU use over the window, when
	// -server-pid names several (the nodes of a cluster); ServerCPUPercent
	// is their sum.
	NodeCPUPercent []float64 `json:"node_cpu_percent,omitempty"`
	// ServerCPUMicrosPerDelivery is the servers' CPU time over the window
	// (summed) divided by the messages delivered in it, with -server-pid.
	ServerCPUMicrosPerDelivery *float64 `json:"server_cpu_us_per_delivery,omitempty"`
	BytesPerSession            *float64 `json:"bytes_per_session,omitempty"`
	RSSBefore                  int64    `json:"rss_before,omitempty"`
	RSSAfter                   int64    `json:"rss_after,omitempty"`
	RSSEnd                     int64    `json:"rss_end,omitempty"`
	// ServerLongPoll is the gateway's own long-polling answer latency in
	// the window, with -api.
	ServerLongPoll *ServerAnswers `json:"server_long_poll_answer_ms,omitempty"`
	// Slow is the slow scenario's own part.
	Slow *SlowReport `json:"slow,omitempty"`
	// Handshakes is the handshakes scenario's own part.
	Handshakes *HandshakeReport `json:"handshakes,omitempty"`
}

// HandshakeReport is what the handshakes scenario measured.
type HandshakeReport struct {
	Done    int64   `json:"done"`
	Failed  int64   `json:"failed"`
	PerSec  float64 `json:"per_sec"`
	Version string  `json:"version"` // of the first handshake
	Curve   string  `json:"curve"`   // its key exchange
	Cipher  string  `json:"cipher"`
	// ServerCPUMicros is the server's CPU time per handshake, with
	// -server-pid.
	ServerCPUMicros *float64 `json:"server_cpu_us_per_handshake,omitempty"`
}

// SlowReport is what the slow scenario reports besides the healthy
// subscribers' overall figures (the report's latency, delivered, lost).
// Times are in seconds since time 0, when the measurement window opened
// and the paused subscribers stopped reading.
type SlowReport struct {
	Healthy      int           `json:"healthy"` // healthy subscribers that subscribed
	Paused       int           `json:"paused"`
	PausedRcvBuf int           `json:"paused_rcvbuf,omitempty"`
	PausedMSS    int           `json:"paused_mss,omitempty"`
	Channels     []SlowChannel `json:"channels"`
	// HealthyDropped counts the healthy subscribers whose connection
	// closed or whose connect failed during the run; DropReasons groups
	// them by the first sign (a close code, "eof", "reset", a Bayeux
	// error).
	HealthyDropped int              `json:"healthy_dropped"`
	DropReasons    map[string]int64 `json:"healthy_drop_reasons,omitempty"`
	FirstDropS     *float64         `json:"first_drop_s,omitempty"`
	// MaxGapMS is the longest time a healthy subscriber went without a
	// delivery while publishing went on (until it was dropped, if it was).
	MaxGapMS      float64          `json:"healthy_max_gap_ms"`
	PausedClients []PausedResult   `json:"paused_clients,omitempty"`
	PausedErrors  map[string]int64 `json:"paused_errors,omitempty"`
	Gateway       *SlowGateway     `json:"gateway,omitempty"`
	Timeline      SlowTimeline     `json:"timeline"`
	// CheckFailures lists the failed checks; any makes the exit status 1.
	CheckFailures []string `json:"check_failures,omitempty"`
}

// SlowChannel describes the healthy subscribers of one channel.
type SlowChannel struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
	// Published is what each subscriber should have received; Received*
	// summarise what they did; Short counts those that received less.
	Published      int64     `json:"published"`
	ReceivedMin    int64     `json:"received_min"`
	ReceivedMedian int64     `json:"received_median"`
	ReceivedMax    int64     `json:"received_max"`
	Short          int       `json:"short"`
	Latency        LatencyMS `json:"latency_ms"`
	MaxGapMS       float64   `json:"max_gap_ms"`
}

// PausedResult describes one paused subscriber. Fields are absent when
// not seen: socket figures need Linux, gateway figures -api.
type PausedResult struct {
	Channel   string `json:"channel"`
	Published int64  `json:"published"`
	// Received is what it read in the end, when its socket was drained.
	Received int64 `json:"received"`
	// PeakQueuedBytes is the most data seen waiting in its socket, unread;
	// SocketFullS when that stopped growing (its kernel buffers full).
	PeakQueuedBytes int      `json:"peak_queued_bytes"`
	SocketFullS     *float64 `json:"socket_full_s,omitempty"`
	// TCPClosedS is when its socket left the established state unread (a
	// reset, or a FIN that got through), and to which state.
	TCPClosedS *float64 `json:"tcp_closed_s,omitempty"`
	TCPState   string   `json:"tcp_state,omitempty"`
	// From the control API: the session's largest queue, since when it
	// held more than 100 ms of messages (the gateway no longer writing),
	// when it was removed; and, with one paused subscriber, when the
	// gateway's websocket count fell without a healthy client explaining it.
	MaxQueueDepth *int     `json:"max_queue_depth,omitempty"`
	BacklogS      *float64 `json:"backlog_s,omitempty"`
	SessionGoneS  *float64 `json:"session_gone_s,omitempty"`
	ConnClosedS   *float64 `json:"conn_closed_s,omitempty"`
	// ClosedS is the earliest of the signs above that the gateway closed
	// it; ClosedAfterStallS counts from backlog_s, or else socket_full_s.
	ClosedS           *float64 `json:"closed_s,omitempty"`
	ClosedAfterStallS *float64 `json:"closed_after_stall_s,omitempty"`
	// End is how its socket ended when read after the run: "close CODE
	// TEXT", "eof", "reset", or "open" (silent for 2 s, not closed).
	End string `json:"end"`
}

// SlowGateway is what the control API showed over the run (-api).
type SlowGateway struct {
	ConnsAtStart int64 `json:"websocket_conns_start"`
	ConnsMin     int64 `json:"websocket_conns_min"`
	ConnsAtEnd   int64 `json:"websocket_conns_end"`
	DroppedSlow  int64 `json:"dropped_slow"`
	Expired      int64 `json:"expired"`
	// UnexplainedClosesS lists when the websocket count fell below its
	// start by more than the healthy subscribers' drops explain.
	UnexplainedClosesS []float64 `json:"unexplained_closes_s,omitempty"`
}

// SlowTimeline has one entry per second since time 0: payloads the healthy
// subscribers received, the largest latency among them, and the most KiB
// seen waiting unread in a paused socket.
type SlowTimeline struct {
	Delivered      []int64   `json:"delivered"`
	MaxMS          []float64 `json:"max_ms"`
	PausedQueuedKB []int64   `json:"paused_queued_kib,omitempty"`
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
	if r.Slow != nil {
		r.Slow.write(w)
	}
	if h := r.Handshakes; h != nil {
		fmt.Fprintf(w, "  TLS handshakes: %d done, %d failed, %.0f/s (%s, %s, %s)", h.Done, h.Failed, h.PerSec, h.Version, h.Curve, h.Cipher)
		if h.ServerCPUMicros != nil {
			fmt.Fprintf(w, ", server CPU %.0f µs each", *h.ServerCPUMicros)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  errors %d, tool CPU %.0f%%", r.Errors, r.ToolCPUPercent)
	if r.ServerCPUPercent != nil {
		fmt.Fprintf(w, ", server CPU %.0f%%", *r.ServerCPUPercent)
	}
	if len(r.NodeCPUPercent) > 0 {
		fmt.Fprintf(w, " (nodes %v%%)", r.NodeCPUPercent)
	}
	if r.ServerCPUMicrosPerDelivery != nil {
		fmt.Fprintf(w, ", %.2f µs server CPU per delivery", *r.ServerCPUMicrosPerDelivery)
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

// write prints the slow scenario's part of the summary.
func (s *SlowReport) write(w io.Writer) {
	fmt.Fprintf(w, "  healthy: %d subscribed, %d dropped", s.Healthy, s.HealthyDropped)
	if s.FirstDropS != nil {
		fmt.Fprintf(w, " (first at %.1fs)", *s.FirstDropS)
	}
	fmt.Fprintf(w, ", longest without a delivery %.0f ms\n", s.MaxGapMS)
	for _, k := range sortedKinds(s.DropReasons) {
		fmt.Fprintf(w, "    dropped: %-40s %d\n", k, s.DropReasons[k])
	}
	for _, c := range s.Channels {
		fmt.Fprintf(w, "  %s: %d healthy, published %d, received min %d median %d max %d (%d short); p50 %.2f p99 %.2f max %.2f ms; longest gap %.0f ms\n",
			c.Channel, c.Subscribers, c.Published, c.ReceivedMin, c.ReceivedMedian, c.ReceivedMax, c.Short,
			c.Latency.P50, c.Latency.P99, c.Latency.Max, c.MaxGapMS)
	}
	for j, p := range s.PausedClients {
		fmt.Fprintf(w, "  paused %d on %s: received %d of %d when drained; socket end: %s; peak %d bytes unread",
			j, p.Channel, p.Received, p.Published, p.End, p.PeakQueuedBytes)
		optS(w, ", socket full at %.1fs", p.SocketFullS)
		optS(w, ", gateway backlog from %.1fs", p.BacklogS)
		if p.MaxQueueDepth != nil {
			fmt.Fprintf(w, " (queue up to %d)", *p.MaxQueueDepth)
		}
		optS(w, ", TCP closed at %.1fs", p.TCPClosedS)
		optS(w, ", connection closed at %.1fs", p.ConnClosedS)
		optS(w, ", session removed at %.1fs", p.SessionGoneS)
		if p.ClosedS == nil {
			fmt.Fprint(w, "; not disconnected by the gateway during the run")
		} else {
			fmt.Fprintf(w, "; disconnected at %.1fs", *p.ClosedS)
			optS(w, " (%.1fs after its stall)", p.ClosedAfterStallS)
		}
		fmt.Fprintln(w)
	}
	if g := s.Gateway; g != nil {
		fmt.Fprintf(w, "  gateway: websocket connections %d -> min %d -> %d, dropped slow %d, expired %d\n",
			g.ConnsAtStart, g.ConnsMin, g.ConnsAtEnd, g.DroppedSlow, g.Expired)
	}
	fmt.Fprint(w, "  per second: healthy deliveries / max latency ms")
	if len(s.Timeline.PausedQueuedKB) > 0 {
		fmt.Fprint(w, " / KiB unread in paused sockets")
	}
	fmt.Fprintln(w)
	for i := range s.Timeline.Delivered {
		if i%6 == 0 {
			fmt.Fprintf(w, "   %3ds", i)
		}
		fmt.Fprintf(w, "  %d/%.0f", s.Timeline.Delivered[i], s.Timeline.MaxMS[i])
		if i < len(s.Timeline.PausedQueuedKB) {
			fmt.Fprintf(w, "/%d", s.Timeline.PausedQueuedKB[i])
		}
		if i%6 == 5 || i == len(s.Timeline.Delivered)-1 {
			fmt.Fprintln(w)
		}
	}
	for _, f := range s.CheckFailures {
		fmt.Fprintf(w, "  CHECK FAILED: %s\n", f)
	}
}

// optS prints format with *v, if v is set.
func optS(w io.Writer, format string, v *float64) {
	if v != nil {
		fmt.Fprintf(w, format, *v)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
