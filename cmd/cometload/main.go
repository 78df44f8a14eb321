// Command cometload is a load generator for Bayeux (CometD protocol)
// servers: Cometgate, CometD, Faye or any other. It speaks Bayeux itself,
// over websocket or long-polling, and is built to absorb hundreds of
// thousands of delivered messages per second on one core: one reader
// goroutine per connection, and delivered payloads are counted by
// scanning frame bytes for the tool's own markers instead of decoding
// JSON.
//
// Scenarios:
//
//	fanout  S subscribers on one channel, one publisher at -rate msg/s
//	rooms   N clients in rooms of G, each publishing -rate msg/s to its room
//	idle    C idle subscribed sessions held for -hold; server RSS per session
//	rpc     remote calls on a /service channel at -concurrency
//	slow    healthy subscribers next to -paused ones that stop reading
//	        their sockets: does one slow consumer stall the others?
//	handshakes  C TLS handshakes (https:// URL), -setup-concurrency at a
//	        time, each on a new connection closed at once: handshakes/s
//	        and, with -server-pid, the server's CPU time per handshake
//	relay   K long-polling sessions opened on -url, their publishes sent
//	        to -pub-url: what a cluster node adds by relaying a request to
//	        the session's owner
//
// Clusters: -url takes a comma-separated list (the subscribers connect to
// each in turn), -pub-url names the publishers' endpoints, and
// -server-pid a comma-separated list of the nodes' PIDs: the report then
// gives each node's CPU use and the CPU time per delivery of them all.

// An https:// URL makes websocket clients use wss://; -ca trusts a PEM
// file's certificates, -insecure skips verification (loopback tests).
//
// Each run prints a short summary, then one JSON line (the last line of
// standard output) with the results. Progress goes to standard error.
//
//	cometload -table FILE...   # medians of JSON result lines, grouped by -label
//
//	cometload -url http://127.0.0.1:8080/cometd -scenario fanout -subscribers 1000 -rate 200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain())
}

func realMain() int {
	if len(os.Args) > 1 && os.Args[1] == "-table" {
		if err := printTable(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "cometload:", err)
			return 1
		}
		return 0
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "cometload:", err)
		return 2
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if os.Getenv("GOGC") == "" {
		// Memory is cheap here and CPU is what the tool must not run out
		// of: collect less often than the default 100.
		debug.SetGCPercent(400)
	}

	sessions := cfg.clients
	switch cfg.scenario {
	case "fanout":
		sessions = cfg.subscribers + 1
	case "rpc":
		sessions = cfg.concurrency
	case "idle":
		sessions = cfg.clients + 1
	case "slow":
		sessions = cfg.subscribers + cfg.paused + 2
	case "handshakes":
		sessions = cfg.setup.concurrency
	case "relay":
		sessions = cfg.concurrency
	}
	need := uint64(sessions) + 64
	if limit, err := raiseNoFile(need); err != nil {
		slog.Warn("open-file limit too low for this run: sessions beyond it will fail", "limit", limit, "need", need, "err", err)
	} else {
		slog.Info("open-file limit", "limit", limit, "need", need)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every run stops by itself: the budget covers the phases plus room
	// for setup and teardown.
	budget := cfg.warmup + cfg.duration + cfg.hold + cfg.drain + 3*time.Minute
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	st := newStats()
	e := &env{url: cfg.url, urls: cfg.urls, pubURLs: cfg.pubURLs, transport: cfg.transport, timeout: cfg.timeout, stats: st}
	switch cfg.transport {
	case "websocket":
		e.ws = newWSShared(cfg.url, cfg.readBuf, sockOpts{}, cfg.tls)
	case "long-polling":
		e.lp = newLPShared(sessions, cfg.tls)
	case "grpc":
		g, err := newGRPCShared(cfg.url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cometload:", err)
			return 1
		}
		defer g.conn.Close()
		e.grpc = g
	}
	rep := &Report{
		Scenario: cfg.scenario, Transport: cfg.transport, URL: strings.Join(cfg.urls, ","), Label: cfg.label,
		PubURL: strings.Join(cfg.pubURLs, ","), Size: cfg.size,
	}
	r := &run{cfg: cfg, env: e, stats: st, report: rep}
	var scenario func(context.Context, *run) error
	switch cfg.scenario {
	case "fanout":
		rep.Requested, rep.Rate = cfg.subscribers, cfg.rate
		scenario = runFanout
	case "rooms":
		rep.Requested, rep.Rate, rep.RoomSize = cfg.clients, cfg.rate, cfg.roomSize
		scenario = runRooms
	case "idle":
		rep.Requested = cfg.clients
		scenario = runIdle
	case "rpc":
		rep.Requested, rep.Concurrency, rep.Rate = cfg.concurrency, cfg.concurrency, cfg.callRate
		scenario = runRPC
	case "slow":
		rep.Requested, rep.Rate = cfg.subscribers, cfg.rate
		scenario = runSlow
	case "handshakes":
		rep.Requested, rep.Concurrency = cfg.clients, cfg.setup.concurrency
		scenario = runHandshakes
	case "relay":
		rep.Requested, rep.Concurrency, rep.Rate = cfg.concurrency, cfg.concurrency, cfg.callRate
		scenario = runRelay
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cometload:", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	slog.Info("starting", "scenario", cfg.scenario, "transport", cfg.transport, "url", cfg.url, "sessions", sessions)
	runErr := scenario(ctx, r)
	if runErr != nil {
		st.errs.add("run_failed", runErr.Error())
	}
	if cfg.api != "" {
		if after, err := fetchServerLatency(ctx, cfg.api, cfg.apiToken); err != nil {
			st.errs.add("server_stats", err.Error())
		} else {
			rep.ServerLongPoll = answersBetween(r.apiBefore, after)
		}
	}
	rep.finish(st)
	if rep.Slow != nil {
		rep.Slow.CheckFailures = slowChecks(rep.Slow, rep.Latency.P99, cfg.baselineP99, cfg.p99Ratio, cfg.pausedBound)
	}
	if err := rep.write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cometload:", err)
		return 1
	}
	if runErr != nil || rep.Slow != nil && len(rep.Slow.CheckFailures) > 0 {
		return 1
	}
	return 0
}

// applyScenarioDefaults gives the flags the command line did not set (set
// holds the names of those it did) the defaults of cfg's scenario, where
// they differ from the flags' own: slow runs issue 8's figures, 100
// healthy subscribers, 300 messages/s of 1 KB, 30 s.
func applyScenarioDefaults(cfg *config, set map[string]bool) {
	if cfg.scenario == "relay" && !set["transport"] {
		cfg.transport = "long-polling"
	}
	if cfg.scenario != "slow" {
		return
	}
	if !set["subscribers"] {
		cfg.subscribers = 100
	}
	if !set["rate"] {
		cfg.rate = 300
	}
	if !set["size"] {
		cfg.size = 1024
	}
	if !set["duration"] {
		cfg.duration = 30 * time.Second
	}
}

// parseFlags reads and checks the command line.
func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("cometload", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: cometload -scenario fanout|rooms|idle|rpc|slow|handshakes|relay -url http://HOST:PORT/cometd[,URL...] [flags]")
		fmt.Fprintln(fs.Output(), "       cometload -table RESULTS.jsonl...")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.scenario, "scenario", "fanout", "fanout, rooms, idle, rpc, slow, handshakes or relay")
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/cometd", "Bayeux endpoint (http://; websocket uses the same URL with ws://); fanout, relay: a comma-separated list (a cluster's nodes), used by the subscribers (relay: the sessions' owners) in turn")
	pubURLs := fs.String("pub-url", "", "fanout: the publisher's endpoint; relay: where the sessions send their requests, in turn (comma-separated); default: the first -url")
	serverPIDs := fs.String("server-pid", "", "server process whose CPU use (all scenarios) and VmRSS (idle) to read; a comma-separated list for a cluster's nodes (CPU use summed and per node)")
	fs.StringVar(&cfg.transport, "transport", "websocket", "websocket, long-polling, or grpc (rpc only: the backend contract's Call, directly, for a baseline)")
	fs.StringVar(&cfg.channel, "channel", "", "channel (fanout, idle), room channel prefix (rooms), service channel (rpc, default /service/echo), or prefix of the two channels /a and /b (slow, default /load/slow)")
	fs.StringVar(&cfg.label, "label", "", "free text copied into the JSON result")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time (slow: 30s)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load before measuring (not measured)")
	fs.DurationVar(&cfg.hold, "hold", 30*time.Second, "idle: how long to hold the sessions once all are open")
	fs.DurationVar(&cfg.settle, "settle", 5*time.Second, "idle: wait after opening before reading the server's RSS")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "longest wait for in-flight messages after publishing stops")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "request timeout (and margin over the server's connect timeout)")
	fs.IntVar(&cfg.subscribers, "subscribers", 1000, "fanout: subscribers; slow: healthy subscribers (slow: 100)")
	fs.IntVar(&cfg.paused, "paused", 1, "slow: subscribers on channel /a that stop reading their sockets when the measurement starts, after -warmup (0: the baseline run)")
	fs.Float64Var(&cfg.otherShare, "other-share", 0.5, "slow: share of the healthy subscribers on channel /b, which the paused ones are not on")
	fs.IntVar(&cfg.pausedSock.rcvBuf, "paused-rcvbuf", 4096, "slow: SO_RCVBUF of the paused subscribers' sockets, bytes (0: the system's default)")
	fs.IntVar(&cfg.pausedSock.mss, "paused-mss", 1460, "slow: TCP_MAXSEG of the paused subscribers' sockets, bytes: on loopback the segment size is 64 KiB, and the gateway's send buffer grows with it (0: the system's default)")
	fs.Float64Var(&cfg.baselineP99, "check-baseline-p99", 0, "slow: fail (exit status 1) if the healthy p99 exceeds -check-p99-ratio times this many ms (0: not checked)")
	fs.Float64Var(&cfg.p99Ratio, "check-p99-ratio", 2, "slow: see -check-baseline-p99")
	fs.DurationVar(&cfg.pausedBound, "check-paused-close", 0, "slow: fail unless the gateway disconnects every paused subscriber within this time of its stall (0: not checked)")
	fs.IntVar(&cfg.clients, "clients", 1000, "rooms, idle: sessions; handshakes: TLS handshakes")
	fs.IntVar(&cfg.roomSize, "room-size", 10, "rooms: members per room")
	fs.IntVar(&cfg.concurrency, "concurrency", 50, "rpc, relay: sessions, each with one call (relay: request) in flight")
	fs.IntVar(&cfg.size, "size", 100, "bytes of data per message (slow: 1024)")
	fs.Float64Var(&cfg.rate, "rate", 100, "fanout: messages/s published; rooms: messages/s per client; slow: messages/s to each channel (slow: 300)")
	fs.Float64Var(&cfg.callRate, "call-rate", 0, "rpc, relay: calls (relay: requests)/s over all sessions, each on its own schedule (0: a closed loop, each session calls again as soon as it is answered)")
	fs.IntVar(&cfg.maxBatch, "max-batch", 100, "fanout: most publishes in one frame or request")
	fs.IntVar(&cfg.setup.concurrency, "setup-concurrency", 200, "sessions being opened at once")
	fs.Float64Var(&cfg.setup.rate, "setup-rate", 0, "sessions started per second (0: as fast as setup-concurrency allows)")
	fs.DurationVar(&cfg.setup.timeout, "setup-timeout", 30*time.Second, "time allowed to open one session")
	fs.IntVar(&cfg.readBuf, "ws-read-buffer", 4096, "websocket read buffer per connection, bytes")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	fs.StringVar(&cfg.api, "api", "", "a Cometgate control API (REST) base URL, e.g. http://127.0.0.1:8081: report the gateway's own long-polling answer latency")
	fs.StringVar(&cfg.apiToken, "api-token", "", "bearer token for -api")
	fs.StringVar(&cfg.caFile, "ca", "", "https:// URLs: trust the certificates of this PEM file instead of the system's")
	fs.BoolVar(&cfg.insecure, "insecure", false, "https:// URLs: do not verify the server's certificate (loopback tests)")
	fs.StringVar(&cfg.curve, "tls-curve", "", "https:// URLs: offer only this key exchange, x25519 or p256 (default: Go's list, X25519MLKEM768 first, as current browsers)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch cfg.scenario {
	case "fanout", "rooms", "idle", "rpc", "slow", "handshakes", "relay":
	default:
		return nil, fmt.Errorf("-scenario %q: want fanout, rooms, idle, rpc, slow, handshakes or relay", cfg.scenario)
	}
	cfg.urls = splitList(cfg.url)
	if len(cfg.urls) == 0 {
		return nil, errors.New("-url is empty")
	}
	cfg.url = cfg.urls[0]
	cfg.pubURLs = splitList(*pubURLs)
	if (len(cfg.urls) > 1 || len(cfg.pubURLs) > 0) && cfg.scenario != "fanout" && cfg.scenario != "relay" {
		return nil, fmt.Errorf("-scenario %s: one -url and no -pub-url (lists are for fanout and relay)", cfg.scenario)
	}
	for _, p := range splitList(*serverPIDs) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid < 0 {
			return nil, fmt.Errorf("-server-pid %q: want process ids", *serverPIDs)
		}
		if pid > 0 {
			cfg.serverPIDs = append(cfg.serverPIDs, pid)
		}
	}
	if len(cfg.serverPIDs) > 0 {
		cfg.serverPID = cfg.serverPIDs[0]
	}
	if cfg.scenario == "handshakes" && !strings.HasPrefix(cfg.url, "https://") {
		return nil, fmt.Errorf("-scenario handshakes: -url %q: want https://", cfg.url)
	}
	tc, err := clientTLS(cfg.caFile, cfg.insecure, cfg.curve)
	if err != nil {
		return nil, err
	}
	cfg.tls = tc
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	applyScenarioDefaults(cfg, set)
	if cfg.scenario == "slow" {
		if cfg.transport != "websocket" {
			return nil, errors.New("-scenario slow: only -transport websocket (a paused subscriber stops reading its socket)")
		}
		if cfg.paused < 0 || cfg.pausedSock.rcvBuf < 0 || cfg.pausedSock.mss < 0 || cfg.otherShare < 0 || cfg.otherShare > 1 {
			return nil, errors.New("-paused, -paused-rcvbuf and -paused-mss must be >= 0, -other-share in [0, 1]")
		}
		if cfg.baselineP99 < 0 || cfg.p99Ratio <= 0 || cfg.pausedBound < 0 {
			return nil, errors.New("-check-baseline-p99 and -check-paused-close must be >= 0, -check-p99-ratio > 0")
		}
	}
	switch cfg.transport {
	case "websocket", "long-polling":
		for _, u := range append(slices.Clone(cfg.urls), cfg.pubURLs...) {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return nil, fmt.Errorf("-url or -pub-url %q: want http:// or https://", u)
			}
		}
		if cfg.scenario == "relay" && cfg.transport != "long-polling" {
			return nil, errors.New("-scenario relay: only -transport long-polling (websocket sessions are not relayed)")
		}
	case "grpc":
		if cfg.scenario != "rpc" {
			return nil, fmt.Errorf("-transport grpc: only the rpc scenario calls a backend directly")
		}
		if !strings.HasPrefix(cfg.url, "grpc://") {
			return nil, fmt.Errorf("-url %q: want grpc://HOST:PORT with -transport grpc", cfg.url)
		}
	default:
		return nil, fmt.Errorf("-transport %q: want websocket, long-polling or grpc", cfg.transport)
	}
	if (cfg.scenario == "fanout" || cfg.scenario == "rooms" || cfg.scenario == "slow") && cfg.rate <= 0 {
		return nil, errors.New("-rate must be > 0")
	}
	if cfg.callRate < 0 {
		return nil, errors.New("-call-rate must be >= 0")
	}
	if cfg.subscribers < 0 || cfg.clients < 0 || cfg.concurrency < 1 || cfg.roomSize < 1 || cfg.maxBatch < 1 || cfg.setup.concurrency < 1 {
		return nil, errors.New("-subscribers and -clients must be >= 0; -concurrency, -room-size, -max-batch and -setup-concurrency >= 1")
	}
	if cfg.duration <= 0 || cfg.warmup < 0 || cfg.hold < cfg.settle {
		return nil, errors.New("-duration must be > 0, -warmup >= 0, -hold >= -settle")
	}
	return cfg, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
