package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/backend"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/transport"
	"github.com/cometgate/cometgate/plugins"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series of a node.
const Namespace = "cometgate"

// Metrics is a node's registry and the collectors it records into. Build
// it with New, pass its hooks (ObserveAnswer, ObserveCall,
// ObserveRequest) to the components, then Register the components whose
// counters are read at scrape time.
type Metrics struct {
	reg      *prometheus.Registry
	answers  *Latency
	calls    *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// New returns Metrics with a fresh registry holding the Go runtime and
// process collectors, the long-poll answer and remote-call latency
// histograms, and the API request counter.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		answers: newLatency(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "long_poll_answer_seconds",
			Help: "Time from a message being queued for a session with a held long-polling connect to that connect's response being written.",
		}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "backend_call_duration_seconds",
			Help:    "Remote calls (/service channels routed to a backend), retries included, by route, backend and code.",
			Buckets: callBuckets,
		}, []string{"route", "backend", "code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_requests_total",
			Help: "Control API requests by protocol (grpc, rest), method (gRPC method or REST route) and code (gRPC code or HTTP status).",
		}, []string{"protocol", "method", "code"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.answers.h, m.calls, m.requests,
	)
	return m
}

// Registry returns the registry, to register more collectors or gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveAnswer records the latency of a long-polling answer (the
// transport's AnswerLatency hook).
func (m *Metrics) ObserveAnswer(d time.Duration) { m.answers.Observe(d) }

// LongPollAnswers summarises the long-polling answer latency, for the
// control API's Stats.
func (m *Metrics) LongPollAnswers() LatencySummary { return m.answers.Summary() }

// ObserveCall records a remote call (the backend router's ObserveCall
// hook).
func (m *Metrics) ObserveCall(route, backend, code string, d time.Duration) {
	m.calls.WithLabelValues(route, backend, code).Observe(max(d, 0).Seconds())
}

// ObserveRequest counts a control API request (the API's ObserveRequest
// hook).
func (m *Metrics) ObserveRequest(protocol, method, code string) {
	m.requests.WithLabelValues(protocol, method, code).Inc()
}

// Sources are the components whose counters are read at scrape time.
// Nil fields are skipped.
type Sources struct {
	Engine    *engine.Engine
	Transport *transport.Handler
	Backends  *backend.Router
	// RefusedConnections counts connections refused by
	// limits.maxConnectionsPerAddress.
	RefusedConnections func() int64
	// APIRefused counts REST requests refused by the control API's
	// browser checks, by reason (host, origin, contentType).
	APIRefused func() map[string]int64
	// Plugins counts the filters' outcomes.
	Plugins *plugins.Counters
	// CertificateExpiry returns when the certificate last served on the
	// public listener expires; zero while none was served. Nil without TLS.
	CertificateExpiry func() time.Time
	// CertificateLoadFailures counts certificates that could not be
	// loaded or obtained (tls.mode files: a bad pair on disk). Nil
	// without TLS.
	CertificateLoadFailures func() int64
	// TLSCertificates counts the certificates obtained and renewed from
	// the ACME CA, and the on-demand handshakes refused for names outside
	// the allowlist (tls.mode auto).
	TLSCertificates func() (obtained, renewed, onDemandRefused int64)
	// Cluster reads the cluster node's figures; nil on a single node.
	Cluster func() ClusterFigures
}

// ClusterFigures are a cluster node's counters and gauges.
type ClusterFigures struct {
	Connected bool // connected to NATS now
	// Sent and Received count broadcasts to and from the other nodes;
	// SendFailed, those NATS would not take; Invalid, those received that
	// were malformed and dropped.
	Sent, Received, SendFailed, Invalid int64
	// PeerInvalid counts malformed heartbeats and control API messages
	// of other nodes, dropped.
	PeerInvalid int64
	// SlowConsumerDrops counts broadcasts the NATS client dropped because
	// a subscription's pending limits were full.
	SlowConsumerDrops int64
	Subscriptions     int64 // NATS broadcast subscriptions held now
	Disconnects       int64
	Reconnects        int64
	// RelayedOut counts polls relayed to their owner node; RelayedIn,
	// those served for other nodes; RelayFailed, relays that failed, by
	// reason: gone (the owner has left: the client handshakes again),
	// timeout, unreachable (NATS would not carry it), refused (over
	// cluster.maxRelayed), invalid (a malformed request or answer).
	RelayedOut, RelayedIn int64
	RelayFailed           map[string]int64
	// Nodes is the number of nodes this node sees live, itself included.
	Nodes int64
}

// Register adds the collectors that read src's counters when scraped,
// and counts sessions closed by reason through a listener on the engine.
func (m *Metrics) Register(src Sources) error {
	c := &collector{src: src}
	if src.Engine != nil {
		src.Engine.OnSessionRemoved(func(_ *engine.Session, r engine.CloseReason) {
			if int(r) < len(c.closed) {
				c.closed[r].Add(1)
			}
		})
	}
	return m.reg.Register(c)
}

// closeReasons are the engine's close reasons, by value.
var closeReasons = [...]engine.CloseReason{engine.CloseDisconnect, engine.CloseExpired, engine.CloseSlow, engine.CloseServer, engine.CloseShutdown}

// collector reads the components' counters at scrape time.
type collector struct {
	src    Sources
	closed [len(closeReasons) + 1]atomic.Int64 // sessions closed, by CloseReason
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	descSessions          = desc("sessions", "Live sessions by the transport they last used.", "transport")
	descConnectsHeld      = desc("connects_held", "Sessions whose /meta/connect is held now.")
	descChannels          = desc("channels", "Channels with at least one subscriber.")
	descHandshakes        = desc("handshakes_total", "Handshakes by result: ok (session created), denied (by a policy or the auth backend), failed (shutting down, no common connection type).", "result")
	descMessagesIn        = desc("messages_in_total", "Messages received from clients, by channel class (meta, service, broadcast).", "class")
	descPublished         = desc("messages_published_total", "Broadcast messages accepted for fan-out, from clients, backends and the API.")
	descDeliveries        = desc("deliveries_total", "Messages queued to sessions (one per subscriber of a broadcast, or per addressed session).")
	descSessionsClosed    = desc("sessions_closed_total", "Sessions ended, by reason (disconnect, expired, slow: its queue overflowed, server, shutdown).", "reason")
	descBytesWritten      = desc("bytes_written_total", "Bytes written to clients: websocket frames and polling response bodies.")
	descWSConns           = desc("websocket_connections", "Open websocket connections.")
	descWSOpened          = desc("websocket_opened_total", "Websocket connections upgraded.")
	descWSClosed          = desc("websocket_closed_total", "Websocket connections closed, by the close code sent (none: without a close frame; other: any code not listed).", "code")
	descWSSlow            = desc("websocket_slow_closed_total", "Websocket connections cut off because their client did not read fast enough.")
	descWSHandshakeTimout = desc("websocket_handshake_timeouts_total", "Websocket connections closed for not handshaking in time.")
	descOriginRefused     = desc("origin_refused_total", "Websocket upgrades and polling requests refused for their Origin.")
	descLimitHits         = desc("limit_hits_total", "Requests refused by a configured limit, by limit name.", "limit")
	descStreams           = desc("backend_streams", "Upstream broadcast streams open.")
	descStreamOpens       = desc("backend_stream_opens_total", "Upstream broadcast streams opened for a first subscriber.")
	descStreamReopens     = desc("backend_stream_reopens_total", "Upstream broadcast streams reopened after a break.")
	descGaps              = desc("backend_gap_notices_total", "Gap notices sent because a reopened stream may have lost messages.")
	descInvalid           = desc("backend_stream_invalid_total", "Upstream stream messages dropped as not valid JSON or UTF-8.")
	descBackendUp         = desc("backend_up", "1 if the backend's last request reached it, 0 if it found it unreachable.", "backend")
	descFilter            = desc("filter_messages_total", "Messages seen by plugin filters, by filter module, direction (inbound: once per message; outbound: per delivery) and outcome (passed, rewritten, rejected, failed: an error, a panic, invalid output or a trapped WebAssembly guest).", "filter", "direction", "outcome")
	descFilteredOut       = desc("deliveries_filtered_total", "Deliveries dropped for one session by an outbound filter.")
	descPolicyDenied      = desc("policy_denied_total", "Operations denied by plugin policies.")
	descAuthFailed        = desc("auth_failed_total", "Handshakes refused by the plugin authenticators (no credentials, refused credentials, authenticator unavailable).")
	descCredsExpired      = desc("credentials_expired_total", "Sessions disconnected because the credentials they handshook with expired.")
	descAPIRefused        = desc("api_refused_total", "REST requests refused by the control API's browser checks, by reason.", "reason")
	descCertExpiry        = desc("tls_certificate_expiry_seconds", "Seconds until the certificate last served on the public listener expires (negative: expired).")
	descACME              = desc("tls_acme_certificates_total", "Certificates from the ACME CA, by event: obtained, renewed.", "event")
	descOnDemandRefused   = desc("tls_on_demand_refused_total", "TLS handshakes for names outside the on-demand allowlist: no certificate, no ACME order.")
	descCertFailures      = desc("tls_certificate_load_failures_total", "Certificates that could not be loaded or obtained; the one served before is kept.")
	descClusterUp         = desc("cluster_connected", "1 while the node is connected to NATS, 0 while it serves only its local clients and reconnects.")
	descClusterBroadcasts = desc("cluster_broadcasts_total", "Broadcasts exchanged with the other nodes over NATS, by direction (sent, received).", "direction")
	descClusterFailures   = desc("cluster_broadcast_failures_total", "Broadcasts not exchanged, by reason: send (NATS would not take it: disconnected with a full reconnect buffer; its local fan-out happened), invalid (received malformed, dropped).", "reason")
	descClusterSlow       = desc("cluster_slow_consumer_drops_total", "Broadcasts the NATS client dropped because a subscription's pending limits (cluster.maxPendingMessages/Bytes) were full.")
	descClusterSubs       = desc("cluster_subscriptions", "NATS broadcast subscriptions held: one per channel or pattern with local subscribers.")
	descClusterConnEvents = desc("cluster_connection_events_total", "NATS connection events, by event (disconnected, reconnected).", "event")
	descClusterRelayed    = desc("cluster_relayed_total", "Polling requests relayed between nodes, by direction (out: to the session's owner node; in: served for another node).", "direction")
	descClusterRelayFail  = desc("cluster_relay_failures_total", "Relayed polling requests that failed, by reason.", "reason")
	descClusterPeerBad    = desc("cluster_peer_messages_invalid_total", "Heartbeats and control API messages of other nodes dropped as malformed.")
	descClusterNodes      = desc("cluster_nodes", "Nodes this node sees live in the cluster, itself included.")
)

// Describe sends nothing: the collector is unchecked, since which series
// exist depends on the sources.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every source's counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	src := c.src
	var limits = map[string]int64{}
	if e := src.Engine; e != nil {
		by, held := e.SessionCounts()
		for _, t := range []string{transport.WebSocket, transport.LongPolling, transport.CallbackPolling} {
			gauge(descSessions, int64(by[t]), t)
		}
		gauge(descConnectsHeld, int64(held))
		gauge(descChannels, int64(len(e.Channels())))
		st := e.Stats()
		counter(descHandshakes, st.Handshakes.Load(), "ok")
		counter(descHandshakes, st.HandshakesDenied.Load(), "denied")
		counter(descHandshakes, st.HandshakesFailed.Load(), "failed")
		counter(descMessagesIn, st.MessagesMeta.Load(), "meta")
		counter(descMessagesIn, st.MessagesService.Load(), "service")
		counter(descMessagesIn, st.MessagesBroadcast.Load(), "broadcast")
		counter(descPublished, st.Published.Load())
		counter(descDeliveries, st.Delivered.Load())
		for _, r := range closeReasons {
			counter(descSessionsClosed, c.closed[r].Load(), r.String())
		}
		limits["maxSubscriptions"] = st.SubscribeLimited.Load()
		counter(descFilteredOut, st.FilteredOut.Load())
		counter(descPolicyDenied, st.PolicyDenied.Load())
		counter(descAuthFailed, st.AuthFailed.Load())
		counter(descCredsExpired, st.CredentialsExpired.Load())
	}
	if e := src.Engine; e != nil {
		e.Plugins().Stats(func(module, place string, st plugins.Stat) {
			if !validStatName(st.Name) {
				return
			}
			d := prometheus.NewDesc(prometheus.BuildFQName(Namespace, "plugin", st.Name), st.Help, []string{"module", "place"}, nil)
			kind := prometheus.GaugeValue
			if st.Counter {
				kind = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(d, kind, st.Value, module, place)
		})
	}
	if p := src.Plugins; p != nil {
		p.Filters(func(k plugins.FilterKey, fc *plugins.FilterCounts) {
			d := k.Direction.String()
			counter(descFilter, fc.Passed.Load(), k.Module, d, "passed")
			counter(descFilter, fc.Rewritten.Load(), k.Module, d, "rewritten")
			counter(descFilter, fc.Rejected.Load(), k.Module, d, "rejected")
			counter(descFilter, fc.Failed.Load(), k.Module, d, "failed")
		})
	}
	if h := src.Transport; h != nil {
		n := h.Counts()
		counter(descBytesWritten, n.BytesWritten)
		gauge(descWSConns, int64(h.Len()))
		counter(descWSOpened, n.WebSocketOpened)
		for code, v := range n.WebSocketClosed {
			counter(descWSClosed, v, code)
		}
		counter(descWSSlow, h.SlowClosed())
		counter(descWSHandshakeTimout, h.HandshakeTimeouts())
		counter(descOriginRefused, n.OriginRefused)
		limits["maxSessionsPerBrowser"] = n.BrowserLimited
		limits["maxRequestBytes"] = n.TooLarge
	}
	if r := src.Backends; r != nil {
		n := r.Counts()
		gauge(descStreams, int64(r.OpenStreams()))
		counter(descStreamOpens, n.StreamOpens)
		counter(descStreamReopens, n.StreamReopens)
		counter(descGaps, n.Gaps)
		counter(descInvalid, n.InvalidDropped)
		down := r.Unavailable()
		for _, name := range r.Names() {
			up := int64(1)
			for _, d := range down {
				if d == name {
					up = 0
				}
			}
			gauge(descBackendUp, up, name)
		}
		limits["maxCallsPerSession"] = n.CallsLimited
	}
	if f := src.RefusedConnections; f != nil {
		limits["maxConnectionsPerAddress"] = f()
	}
	for name, v := range limits {
		counter(descLimitHits, v, name)
	}
	if f := src.APIRefused; f != nil {
		for reason, v := range f() {
			counter(descAPIRefused, v, reason)
		}
	}
	if f := src.CertificateExpiry; f != nil {
		if t := f(); !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, time.Until(t).Seconds())
		}
	}
	if f := src.CertificateLoadFailures; f != nil {
		counter(descCertFailures, f())
	}
	if f := src.TLSCertificates; f != nil {
		obtained, renewed, refused := f()
		counter(descACME, obtained, "obtained")
		counter(descACME, renewed, "renewed")
		counter(descOnDemandRefused, refused)
	}
	if f := src.Cluster; f != nil {
		k := f()
		up := int64(0)
		if k.Connected {
			up = 1
		}
		gauge(descClusterUp, up)
		counter(descClusterBroadcasts, k.Sent, "sent")
		counter(descClusterBroadcasts, k.Received, "received")
		counter(descClusterFailures, k.SendFailed, "send")
		counter(descClusterFailures, k.Invalid, "invalid")
		counter(descClusterPeerBad, k.PeerInvalid)
		counter(descClusterSlow, k.SlowConsumerDrops)
		gauge(descClusterSubs, k.Subscriptions)
		counter(descClusterConnEvents, k.Disconnects, "disconnected")
		counter(descClusterConnEvents, k.Reconnects, "reconnected")
		counter(descClusterRelayed, k.RelayedOut, "out")
		counter(descClusterRelayed, k.RelayedIn, "in")
		for reason, v := range k.RelayFailed {
			counter(descClusterRelayFail, v, reason)
		}
		gauge(descClusterNodes, k.Nodes)
	}
}

// validStatName reports whether a plugin's stat name is a valid metric
// name part: lower-case letters, digits and '_', starting with a letter.
func validStatName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
