#!/usr/bin/env bash
# Cometgate load benchmark: the standard suite, with the server pinned to
# CPU 0 and the load tool (cmd/cometload) pinned to CPU 1.
#
#   bench/run.sh            # the gateway suite (about five minutes)
#   bench/run.sh faye       # the fanout scenarios against Faye 1.4, same pinning
#   bench/run.sh all        # both, into one results file and one table
#   bench/run.sh rpc        # only the remote-call runs (direct gRPC and through the gateway)
#   bench/run.sh slow       # issue 8: healthy subscribers next to one that stops reading
#   bench/run.sh plugins    # issue 10: fanout with no filter, an inbound WebAssembly filter,
#                           # an outbound Go filter and an outbound WebAssembly filter
#
# Environment:
#   BENCH_RESULTS  JSON-lines results file
#                  (default /tmp/cometgate-bench/<UTC date>-<target>.jsonl)
#   RUNS           runs per cheap configuration, summarised by medians (3)
#   RPC_RATES      calls/s of the paced remote-call runs ("5000 10000")
#   FANOUT_RATES   messages/s for the 1,000-subscriber fanout ("100 300 600 1000")
#   IDLE_CLIENTS   idle sessions (20000, capped by the open-file hard limit)
#   SLOW_HEALTHY   healthy subscribers of the slow runs (100)
#   SLOW_DURATION  measured time of the slow runs (30s)
#   SLOW_PAUSED_BOUND  if set (e.g. 10s), the slow runs also check that the
#                  paused subscriber is disconnected within it of its stall
#   PLUGIN_RATE    messages/s of the plugins runs, to 1,000 subscribers (300)
#   PORT_BASE      first loopback port used (18180)
#
# Everything listens on and connects to 127.0.0.1 only. Every load run is
# bounded by its own flags and by `timeout`; the servers this script
# starts are stopped by PID when it exits.
set -euo pipefail

target=${1:-gateway}
case $target in
gateway | faye | all | rpc | slow | plugins) ;;
*)
	echo "usage: $0 [gateway|faye|all|rpc|slow|plugins]" >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/.."
repo=$(pwd)

RUNS=${RUNS:-3}
FANOUT_RATES=${FANOUT_RATES:-"100 300 600 1000"}
RPC_RATES=${RPC_RATES:-"5000 10000"}
IDLE_CLIENTS=${IDLE_CLIENTS:-20000}
SLOW_HEALTHY=${SLOW_HEALTHY:-100}
SLOW_DURATION=${SLOW_DURATION:-30s}
SLOW_PAUSED_BOUND=${SLOW_PAUSED_BOUND:-}
PLUGIN_RATE=${PLUGIN_RATE:-300}
PORT_BASE=${PORT_BASE:-18180}
stamp=$(date -u +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-/tmp/cometgate-bench/$stamp-$target.jsonl}
mkdir -p "$(dirname "$RESULTS")"
: >>"$RESULTS"
logdir=$(mktemp -d /tmp/cometgate-bench-logs.XXXXXX)
bin=$(mktemp -d /tmp/cometgate-bench-bin.XXXXXX)

server_pid=""
server_log=""
api_url="" # the gateway's control API (loopback, no auth), for server-side stats
backend_pid=""
port=$PORT_BASE

stop_server() {
	[ -n "$server_pid" ] || return 0
	if kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$server_pid" 2>/dev/null || true
	fi
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

stop_backend() {
	[ -n "$backend_pid" ] || return 0
	kill "$backend_pid" 2>/dev/null || true
	wait "$backend_pid" 2>/dev/null || true
	backend_pid=""
}

cleanup() {
	stop_server
	stop_backend
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v taskset >/dev/null; then
	echo "bench: taskset (util-linux) is required for pinning" >&2
	exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "bench: needs two CPUs (server on CPU 0, load on CPU 1)" >&2
	exit 1
fi

# Open files: the server and the tool each hold one descriptor per
# session. Raise the soft limit as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ "$IDLE_CLIENTS" -gt $((fd_limit - 100)) ]; then
	capped=$(((fd_limit - 100) / 100 * 100))
	echo "bench: open-file hard limit is $fd_limit; idle sessions capped at $capped (asked $IDLE_CLIENTS)" >&2
	IDLE_CLIENTS=$capped
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- gateway config cmd/gateway go.mod go.sum 2>/dev/null | wc -l)
# A comment line (cometload -table skips it) records what was measured.
echo "# $stamp target=$target commit=$commit uncommitted_server_files=$dirty $(uname -r) $(nproc) CPUs" >>"$RESULTS"
echo "== building commit $commit (+$dirty uncommitted server files); results: $RESULTS, logs: $logdir"
go build -o "$bin/gateway" ./cmd/gateway
go build -o "$bin/cometload" ./cmd/cometload
go build -o "$bin/example-backend" ./cmd/example-backend

wait_http() { # URL: wait until the server answers, up to 10 s
	for _ in $(seq 100); do
		if curl -s -o /dev/null --max-time 1 "$1"; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_gateway() { # NAME DEMO(true|false) [CONFIG]: a fresh gateway on the next ports, on CPU 0
	stop_server
	local gw_port=$((port + 1)) api_port=$((port + 2))
	port=$api_port
	server_log=$logdir/$1.server.log
	local args=()
	[ -z "${3:-}" ] || args=(-config "$3")
	(
		export COMETGATE_LISTEN=127.0.0.1:$gw_port COMETGATE_DEMO=$2 COMETGATE_API_LISTEN=127.0.0.1:$api_port COMETGATE_LOG_LEVEL=warn
		exec taskset -c 0 "$bin/gateway" "${args[@]}"
	) >"$server_log" 2>&1 &
	server_pid=$!
	url=http://127.0.0.1:$gw_port/cometd
	api_url=http://127.0.0.1:$api_port
	if ! wait_http "http://127.0.0.1:$gw_port/healthz"; then
		echo "bench: gateway did not start; see $server_log" >&2
		cat "$server_log" >&2
		exit 1
	fi
	echo "== gateway pid $server_pid on $url (CPU 0, demo $2; control API $api_url)"
}

start_faye() { # NAME [ignored]: a fresh Faye server on the next port, on CPU 0
	stop_server
	port=$((port + 1))
	server_log=$logdir/$1.server.log
	(exec taskset -c 0 node "$repo/bench/faye-server.mjs" "$port") >"$server_log" 2>&1 &
	server_pid=$!
	api_url=""
	url=http://127.0.0.1:$port/cometd
	if ! wait_http "http://127.0.0.1:$port/"; then
		echo "bench: Faye did not start; see $server_log" >&2
		cat "$server_log" >&2
		exit 1
	fi
	echo "== $(head -1 "$server_log") (CPU 0)"
}

n_run=0
load() { # LABEL LIMIT_SECONDS cometload-flags...: one run on CPU 1
	local label=$1 limit=$2
	shift 2
	n_run=$((n_run + 1))
	local log=$logdir/run$n_run.log
	local status=0
	local api=()
	[ -z "$api_url" ] || api=(-api "$api_url")
	timeout --kill-after=10 "$limit" taskset -c 1 "$bin/cometload" -url "$url" -label "$label" \
		-server-pid "$server_pid" "${api[@]}" "$@" >"$log.out" 2>"$log" || status=$?
	grep -v '^{' "$log.out" | sed 's/^/   /' || true
	local json
	json=$(tail -n 1 "$log.out")
	if [ "${json:0:1}" = "{" ]; then
		printf '%s\n' "$json" >>"$RESULTS"
	else
		echo "   (no result line; exit $status; log $log)"
	fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "bench: the server died during '$label'; last lines of $server_log:" >&2
		tail -n 30 "$server_log" >&2
		exit 1
	fi
	LAST_JSON=$json
}

repeat() { # N LABEL LIMIT flags...
	local n=$1
	shift
	for i in $(seq "$n"); do
		echo "-- $1 [$i/$n]"
		load "$@"
	done
}

p99_of() { printf '%s' "$1" | grep -o '"p99":[0-9.]*' | head -1 | cut -d: -f2; }

fanout_suite() { # PREFIX RUNS START_FN: the fanout scenarios
	local prefix=$1 runs=$2 start=$3
	for rate in $FANOUT_RATES; do
		"$start" "$prefix-fanout1k-$rate" false
		repeat "$runs" "$prefix fanout ws 1k @${rate}/s" 60 \
			-scenario fanout -subscribers 1000 -rate "$rate" -duration 5s -warmup 1s -drain 10s
	done
	"$start" "$prefix-fanout10k" false
	repeat "$runs" "$prefix fanout ws 10k @20/s" 90 \
		-scenario fanout -subscribers 10000 -rate 20 -duration 5s -warmup 1s -drain 10s
	"$start" "$prefix-lp10k" false
	repeat 1 "$prefix fanout lp 10k @1/s" 120 \
		-scenario fanout -transport long-polling -subscribers 10000 -rate 1 -duration 10s -warmup 2s -drain 10s
	# The target: each held connect answered within 50 ms of the publish.
	# The server's own figure (Cometgate only) is the answer; the tool's
	# adds its own cost of receiving 10,000 responses on one core.
	local p99 sp99
	p99=$(p99_of "$LAST_JSON")
	sp99=$(printf '%s' "$LAST_JSON" | grep -o '"server_long_poll_answer_ms":{[^}]*' | grep -o '"p99_at_most":[-0-9.]*' | cut -d: -f2)
	echo "   long-polling 10k: p99 seen by the tool ${p99:-?} ms, answered by the gateway within ${sp99:-n/a} ms"
	if [ -n "$sp99" ]; then
		if awk -v p="$sp99" 'BEGIN { exit !(p >= 0 && p <= 50) }'; then
			echo "   long-polling 10k: server-side p99 ${sp99} ms <= 50 ms: PASS"
		else
			echo "   long-polling 10k: server-side p99 ${sp99} ms > 50 ms: FAIL"
		fi
	fi
}

gateway_suite() {
	fanout_suite gw "$RUNS" start_gateway
	start_gateway idle false
	repeat 1 "gw idle ws ${IDLE_CLIENTS}" 180 \
		-scenario idle -clients "$IDLE_CLIENTS" -hold 20s -settle 5s -drain 15s
	start_gateway rpc true
	repeat "$RUNS" "gw rpc ws c50" 60 \
		-scenario rpc -concurrency 50 -duration 5s -warmup 1s
	rpc_backend_suite
	stop_server
}

# rpc_backend_suite: the remote-call overhead. The same echo call at
# concurrency 50, made directly to a gRPC backend (cmd/example-backend)
# and through the gateway to it. The backend shares CPU 1 with the tool
# in both runs, so the gateway and its CPU 0 are the only difference.
rpc_backend_suite() {
	stop_backend
	port=$((port + 1))
	local backend_port=$port
	(exec taskset -c 1 "$bin/example-backend" -listen "127.0.0.1:$backend_port") >"$logdir/backend.log" 2>&1 &
	backend_pid=$!
	local conf=$logdir/rpc-backend.yaml
	cat >"$conf" <<YAML
backends:
  echo:
    target: 127.0.0.1:$backend_port
routes:
  - channel: /service/echo
    backend: echo
    type: call
YAML
	start_gateway rpc-backend false "$conf"
	local gw_url=$url gw_pid=$server_pid
	url=grpc://127.0.0.1:$backend_port server_pid=$backend_pid
	repeat "$RUNS" "direct grpc c50" 60 \
		-scenario rpc -transport grpc -concurrency 50 -duration 5s -warmup 1s
	url=$gw_url server_pid=$gw_pid
	repeat "$RUNS" "gw rpc ws->grpc c50" 60 \
		-scenario rpc -concurrency 50 -duration 5s -warmup 1s
	# Below saturation: the same calls on a schedule (-call-rate), so the
	# latency difference is what the gateway adds to one call.
	local rate
	for rate in $RPC_RATES; do
		url=grpc://127.0.0.1:$backend_port server_pid=$backend_pid
		repeat "$RUNS" "direct grpc c50 @$rate/s" 60 \
			-scenario rpc -transport grpc -concurrency 50 -call-rate "$rate" -duration 5s -warmup 1s
		url=$gw_url server_pid=$gw_pid
		repeat "$RUNS" "gw rpc ws->grpc c50 @$rate/s" 60 \
			-scenario rpc -concurrency 50 -call-rate "$rate" -duration 5s -warmup 1s
	done
	stop_backend
}

median_of() { # numbers, one per line, on stdin
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# slow_suite: issue 8. SLOW_HEALTHY healthy websocket subscribers, half on
# the channel of one subscriber that stops reading its socket once the
# window opens and half on another channel, 300 msg/s of 1 KB to each
# channel (cometload -scenario slow); first without the paused one (the
# baseline), then with it, each RUNS times on a fresh gateway. The paused
# runs check their healthy p99 against twice the baseline's median, and
# that no healthy session is dropped.
slow_suite() {
	local common=(-scenario slow -subscribers "$SLOW_HEALTHY" -duration "$SLOW_DURATION" -warmup 2s -drain 10s)
	local base_label="gw slow ws h$SLOW_HEALTHY baseline" paused_label="gw slow ws h$SLOW_HEALTHY +1 paused"
	local i base_p99s="" paused_p99s="" dropped=0 closed="" d c
	for i in $(seq "$RUNS"); do
		start_gateway "slow-base-$i" false
		echo "-- $base_label [$i/$RUNS]"
		load "$base_label" 180 "${common[@]}" -paused 0
		base_p99s+="$(p99_of "$LAST_JSON" || true)"$'\n'
	done
	local base
	base=$(printf '%s' "$base_p99s" | grep . | median_of || true)
	echo "   baseline healthy p99, median of $RUNS: ${base:-?} ms"
	local check=()
	[ -z "$base" ] || check+=(-check-baseline-p99 "$base")
	[ -z "$SLOW_PAUSED_BOUND" ] || check+=(-check-paused-close "$SLOW_PAUSED_BOUND")
	for i in $(seq "$RUNS"); do
		start_gateway "slow-paused-$i" false
		echo "-- $paused_label [$i/$RUNS]"
		load "$paused_label" 180 "${common[@]}" -paused 1 "${check[@]}"
		paused_p99s+="$(p99_of "$LAST_JSON" || true)"$'\n'
		d=$(printf '%s' "$LAST_JSON" | grep -o '"healthy_dropped":[0-9]*' | cut -d: -f2 || true)
		dropped=$((dropped + ${d:-0}))
		c=$(printf '%s' "$LAST_JSON" | grep -o '"closed_s":[0-9.]*' | head -1 | cut -d: -f2 || true)
		closed+="${c:-never} "
	done
	stop_server
	local p99
	p99=$(printf '%s' "$paused_p99s" | grep . | median_of || true)
	echo
	echo "== slow: healthy p99 median ${p99:-?} ms with the paused subscriber, ${base:-?} ms without"
	if [ -n "$p99" ] && [ -n "$base" ] && awk -v p="$p99" -v b="$base" 'BEGIN { exit !(p <= 2 * b) }'; then
		echo "   healthy p99 within 2x of the baseline: PASS"
	else
		echo "   healthy p99 within 2x of the baseline: FAIL"
	fi
	if [ "$dropped" -eq 0 ]; then
		echo "   healthy sessions dropped over $RUNS runs: 0: PASS"
	else
		echo "   healthy sessions dropped over $RUNS runs: $dropped: FAIL"
	fi
	echo "   paused subscriber disconnected by the gateway at (s after it stopped reading): $closed"
}

# plugins_suite: issue 10. 1,000 websocket subscribers of one channel and
# PLUGIN_RATE msg/s published to it, on a gateway with: no filter; an
# inbound WebAssembly filter (the profanity example, once per publish); an
# outbound Go filter (nomarkup, once per delivery); an outbound
# WebAssembly filter (the pass example, once per delivery). Compare delivered/s and the
# server's CPU between the rows of one sitting.
plugins_suite() {
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$bin/profanity.wasm" ./plugins/examples/profanity
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$bin/pass.wasm" ./plugins/examples/pass
	local name chain conf
	for name in none inbound-wasm outbound-go outbound-wasm; do
		conf=$logdir/plugins-$name.yaml
		case $name in
		none) chain="" ;;
		inbound-wasm) chain="      inbound: [{module: wasm, file: $bin/profanity.wasm}]" ;;
		outbound-go) chain="      outbound: [{module: nomarkup}]" ;;
		outbound-wasm) chain="      outbound: [{module: wasm, file: $bin/pass.wasm}]" ;;
		esac
		if [ -n "$chain" ]; then
			printf 'plugins:\n  filters:\n    - channels: [/load/**]\n%s\n' "$chain" >"$conf"
		else
			: >"$conf"
		fi
		start_gateway "plugins-$name" false "$conf"
		repeat "$RUNS" "gw fanout ws 1k @${PLUGIN_RATE}/s filter $name" 60 \
			-scenario fanout -subscribers 1000 -rate "$PLUGIN_RATE" -duration 5s -warmup 1s -drain 10s
	done
	stop_server
}

faye_suite() {
	if [ ! -d "$repo/test/node/node_modules/faye" ]; then
		echo "bench: Faye is not installed; run: (cd test/node && npm ci)" >&2
		exit 1
	fi
	fanout_suite faye 1 start_faye
	stop_server
}

start=$(date +%s)
case $target in
gateway) gateway_suite ;;
faye) faye_suite ;;
rpc)
	rpc_backend_suite
	stop_server
	;;
slow) slow_suite ;;
plugins) plugins_suite ;;
all)
	gateway_suite
	faye_suite
	;;
esac

echo
echo "== results ($(($(date +%s) - start)) s): $RESULTS"
"$bin/cometload" -table "$RESULTS"
