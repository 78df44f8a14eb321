#!/usr/bin/env bash
# Cometgate cluster benchmark (issue 12): three gateway nodes joined by
# their embedded NATS servers (cluster.broker embedded, routes between
# them; no other process), pinned to CPU 0, and the load tool
# (cmd/cometload) pinned to CPU 1.
#
#   bench/cluster.sh          # latency, throughput and relay runs (about six minutes)
#
# Runs (RUNS each, medians in the table at the end):
#   cross-node latency  fanout ws, LAT_SUBS subscribers, one publisher at
#                       LAT_RATES msg/s: "same node" (publisher and
#                       subscribers on node 0) against "cross node"
#                       (publisher on node 0, subscribers on node 1);
#                       the difference is the NATS hop.
#   throughput          fanout ws, 1,000 subscribers at TPUT_RATES msg/s:
#                       one node (broker memory) against the three nodes
#                       (subscribers spread over them, publisher on node 0);
#                       deliveries/s, CPU per node and CPU µs per delivery.
#   relay               RELAY_CONC long-polling sessions owned by node 0,
#                       RELAY_RATE publishes/s in all, each waiting for its
#                       ack: requests sent to node 0 (the owner) against
#                       node 1 (relayed to the owner over NATS).
#
# Environment:
#   BENCH_RESULTS  JSON-lines results file
#                  (default /tmp/cometgate-bench/<UTC date>-cluster.jsonl)
#   RUNS           runs per configuration (3)
#   LAT_SUBS       subscribers of the latency runs (10)
#   LAT_RATES      messages/s of the latency runs ("1000 10000")
#   TPUT_RATES     messages/s of the throughput runs ("300 1000")
#   RELAY_CONC     sessions of the relay runs (50)
#   RELAY_RATE     requests/s of the relay runs, over all sessions (2000)
#   PORT_BASE      first loopback port used (18380; the next 30 are used)
#
# Everything listens on and connects to 127.0.0.1 only. Every load run is
# bounded by its own flags and by `timeout`; the gateways this script
# starts are stopped by PID when it exits.
set -euo pipefail

cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
LAT_SUBS=${LAT_SUBS:-10}
LAT_RATES=${LAT_RATES:-"1000 10000"}
TPUT_RATES=${TPUT_RATES:-"300 1000"}
RELAY_CONC=${RELAY_CONC:-50}
RELAY_RATE=${RELAY_RATE:-2000}
PORT_BASE=${PORT_BASE:-18380}
stamp=$(date -u +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-/tmp/cometgate-bench/$stamp-cluster.jsonl}
mkdir -p "$(dirname "$RESULTS")"
: >>"$RESULTS"
logdir=$(mktemp -d /tmp/cometgate-cluster-logs.XXXXXX)
bin=$(mktemp -d /tmp/cometgate-cluster-bin.XXXXXX)

pids=() # the gateways this script started
urls=() # their Bayeux endpoints, node 0 first

stop_nodes() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
	urls=()
}

cleanup() {
	stop_nodes
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v taskset >/dev/null; then
	echo "bench: taskset (util-linux) is required for pinning" >&2
	exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "bench: needs two CPUs (nodes on CPU 0, load on CPU 1)" >&2
	exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$({ git status --porcelain -- gateway config cmd/gateway go.mod go.sum 2>/dev/null || true; } | wc -l)
echo "# $stamp target=cluster commit=$commit uncommitted_server_files=$dirty $(uname -r) $(nproc) CPUs" >>"$RESULTS"
echo "== building commit $commit (+$dirty uncommitted server files); results: $RESULTS, logs: $logdir"
go build -o "$bin/gateway" ./cmd/gateway
go build -o "$bin/cometload" ./cmd/cometload

wait_http() { # URL PID: wait until the server answers, up to 10 s
	for _ in $(seq 100); do
		if curl -s -o /dev/null --max-time 1 "$1"; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_node() { # NAME HTTP_PORT CONFIG: one gateway on CPU 0
	local log=$logdir/$1.log
	(
		export COMETGATE_LISTEN=127.0.0.1:$2 COMETGATE_DEMO=false COMETGATE_API_LISTEN=off COMETGATE_LOG_LEVEL=warn
		exec taskset -c 0 "$bin/gateway" -config "$3"
	) >"$log" 2>&1 &
	pids+=($!)
	urls+=("http://127.0.0.1:$2/cometd")
	if ! wait_http "http://127.0.0.1:$2/healthz" "$!"; then
		echo "bench: node $1 did not start; see $log" >&2
		cat "$log" >&2
		exit 1
	fi
}

# start_single: one gateway, broker memory (today's single node).
start_single() {
	stop_nodes
	local conf=$logdir/single.yaml
	echo "cluster: {broker: memory}" >"$conf"
	start_node single $((PORT_BASE + 1)) "$conf"
	echo "== one node, pid ${pids[*]}, ${urls[*]} (CPU 0)"
}

# start_cluster: three gateways, each with an embedded NATS server whose
# routes reach the other two; then wait until a message published on
# node 0 reaches subscribers on nodes 1 and 2.
start_cluster() {
	stop_nodes
	local i j routes conf
	for i in 0 1 2; do
		routes=""
		for j in 0 1 2; do
			[ "$i" = "$j" ] || routes+="${routes:+, }nats-route://127.0.0.1:$((PORT_BASE + 21 + j))"
		done
		conf=$logdir/node$i.yaml
		cat >"$conf" <<YAML
cluster:
  broker: embedded
  nodeName: node$i
  embedded:
    listen: 127.0.0.1:$((PORT_BASE + 11 + i))
    clusterListen: 127.0.0.1:$((PORT_BASE + 21 + i))
    routes: [$routes]
YAML
		start_node "node$i" $((PORT_BASE + 1 + i)) "$conf"
	done
	echo "== three nodes, pids ${pids[*]}, ${urls[*]} (CPU 0, embedded NATS on ports $((PORT_BASE + 11))-$((PORT_BASE + 13)), routes $((PORT_BASE + 21))-$((PORT_BASE + 23)))"
	local out
	for i in $(seq 20); do
		out=$(timeout 30 taskset -c 1 "$bin/cometload" -scenario fanout -url "${urls[1]},${urls[2]}" -pub-url "${urls[0]}" \
			-subscribers 2 -rate 20 -warmup 0s -duration 1s -drain 3s -channel "/probe/$i" 2>/dev/null | tail -n 1 || true)
		if printf '%s' "$out" | grep -q '"lost":0,' && ! printf '%s' "$out" | grep -q '"delivered":0,'; then
			echo "   routes up: a probe from node 0 reached nodes 1 and 2 (attempt $i)"
			return 0
		fi
	done
	echo "bench: the cluster did not form: probes from node 0 did not reach nodes 1 and 2; logs in $logdir" >&2
	exit 1
}

n_run=0
load() { # LABEL LIMIT_SECONDS cometload-flags...: one run on CPU 1
	local label=$1 limit=$2
	shift 2
	n_run=$((n_run + 1))
	local log=$logdir/run$n_run.log status=0
	local pidlist
	pidlist=$(
		IFS=,
		echo "${pids[*]}"
	)
	timeout --kill-after=10 "$limit" taskset -c 1 "$bin/cometload" -label "$label" -server-pid "$pidlist" "$@" \
		>"$log.out" 2>"$log" || status=$?
	grep -v '^{' "$log.out" | sed 's/^/   /' || true
	local json
	json=$(tail -n 1 "$log.out")
	if [ "${json:0:1}" = "{" ]; then
		printf '%s\n' "$json" >>"$RESULTS"
	else
		echo "   (no result line; exit $status; log $log)"
	fi
	local pid
	for pid in "${pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "bench: a node (pid $pid) died during '$label'; logs in $logdir" >&2
			exit 1
		fi
	done
}

repeat() { # N LABEL LIMIT flags...
	local n=$1
	shift
	for i in $(seq "$n"); do
		echo "-- $1 [$i/$n]"
		load "$@"
	done
}

start=$(date +%s)
fan=(-scenario fanout -duration 5s -warmup 2s -drain 10s)

start_cluster
for rate in $LAT_RATES; do
	repeat "$RUNS" "cluster latency ws ${LAT_SUBS} subs @${rate}/s same node" 60 \
		"${fan[@]}" -subscribers "$LAT_SUBS" -rate "$rate" -url "${urls[0]}" -pub-url "${urls[0]}"
	repeat "$RUNS" "cluster latency ws ${LAT_SUBS} subs @${rate}/s cross node" 60 \
		"${fan[@]}" -subscribers "$LAT_SUBS" -rate "$rate" -url "${urls[1]}" -pub-url "${urls[0]}"
done
for rate in $TPUT_RATES; do
	repeat "$RUNS" "cluster fanout ws 1k @${rate}/s 3 nodes" 90 \
		"${fan[@]}" -subscribers 1000 -rate "$rate" -url "${urls[0]},${urls[1]},${urls[2]}" -pub-url "${urls[0]}"
done
relay=(-scenario relay -concurrency "$RELAY_CONC" -call-rate "$RELAY_RATE" -duration 5s -warmup 2s)
repeat "$RUNS" "cluster relay lp c${RELAY_CONC} @${RELAY_RATE}/s to owner" 60 \
	"${relay[@]}" -url "${urls[0]}" -pub-url "${urls[0]}"
repeat "$RUNS" "cluster relay lp c${RELAY_CONC} @${RELAY_RATE}/s via other node" 60 \
	"${relay[@]}" -url "${urls[0]}" -pub-url "${urls[1]}"

start_single
for rate in $TPUT_RATES; do
	repeat "$RUNS" "cluster fanout ws 1k @${rate}/s 1 node" 90 \
		"${fan[@]}" -subscribers 1000 -rate "$rate" -url "${urls[0]}"
done
stop_nodes

echo
echo "== results ($(($(date +%s) - start)) s): $RESULTS"
"$bin/cometload" -table "$RESULTS"
