#!/usr/bin/env bash
# Issue 11: memory per idle websocket session over TLS, and TLS handshakes
# per second, with the server (cmd/tlsidle-server: the gateway's handler on
# a TLS listener of its own, ECDSA P-256) pinned to CPU 0 and cmd/cometload
# to CPU 1, as bench/run.sh does.
#
#   bench/tlsidle.sh
#
# Environment: IDLE_CLIENTS (19000, capped by the open-file hard limit),
# RUNS (3), HANDSHAKES (5000), PORT (18443), BENCH_RESULTS (JSON lines).
# Modes: plain TCP with the poller, TLS with the poller, TLS with a reader
# goroutine per connection (poller off), and TLS with the poller whose
# clients offer X25519 alone (a ClientHello without the 1.2 KB ML-KEM key
# share current browsers send, which the TLS layer's buffers keep the size of). Loopback only; the servers this
# script starts are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
IDLE_CLIENTS=${IDLE_CLIENTS:-19000}
HANDSHAKES=${HANDSHAKES:-5000}
PORT=${PORT:-18443}
RESULTS=${BENCH_RESULTS:-/tmp/cometgate-bench/$(date -u +%Y%m%d-%H%M%S)-tlsidle.jsonl}
mkdir -p "$(dirname "$RESULTS")"
limit=$(ulimit -Hn)
if [ "$limit" != unlimited ] && [ $((IDLE_CLIENTS + 100)) -gt "$limit" ]; then
	IDLE_CLIENTS=$((limit - 100))
	echo "tlsidle: open-file hard limit $limit; idle sessions capped at $IDLE_CLIENTS" >&2
fi
bin=$(mktemp -d /tmp/tlsidle-bin.XXXXXX)
go build -o "$bin/tlsidle-server" ./cmd/tlsidle-server
go build -o "$bin/cometload" ./cmd/cometload
pid=""
stop() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}
trap stop EXIT
start() { # TLS POLLER
	stop
	taskset -c 0 "$bin/tlsidle-server" -listen "127.0.0.1:$PORT" -tls="$1" -poller="$2" -ca-out "$bin/ca.pem" >"$bin/server.out" 2>&1 &
	pid=$!
	for _ in $(seq 50); do grep -q serving "$bin/server.out" 2>/dev/null && break; sleep 0.1; done
	scheme=http
	[ "$1" = true ] && scheme=https
	url=$scheme://127.0.0.1:$PORT/cometd
}
load() { # LABEL flags...
	local label=$1
	shift
	echo "-- $label"
	local ca=()
	[ "${url:0:5}" = https ] && ca=(-ca "$bin/ca.pem")
	timeout --kill-after=10 600 taskset -c 1 "$bin/cometload" -url "$url" "${ca[@]}" -label "$label" -server-pid "$pid" "$@" >"$bin/out" 2>"$bin/err" || true
	grep -v '^{' "$bin/out" | sed 's/^/   /'
	tail -n 1 "$bin/out" | grep '^{' >>"$RESULTS" || echo "   (no result; see $bin/err)"
}
for i in $(seq "$RUNS"); do
	for mode in "plain-poller false true" "tls-poller true true" "tls-goroutine true false" "tls-poller-x25519 true true x25519"; do
		set -- $mode
		start "$2" "$3"
		curve=()
		[ -z "${4:-}" ] || curve=(-tls-curve "$4")
		load "idle $1 $IDLE_CLIENTS" -scenario idle -clients "$IDLE_CLIENTS" -hold 20s -settle 5s -drain 15s -setup-timeout 60s "${curve[@]}"
	done
	start true true
	load "handshakes ecdsa-p256 default-curves" -scenario handshakes -clients "$HANDSHAKES" -setup-concurrency 64
	load "handshakes ecdsa-p256 x25519" -scenario handshakes -clients "$HANDSHAKES" -setup-concurrency 64 -tls-curve x25519
done
stop
"$bin/cometload" -table "$RESULTS" || true
echo "results: $RESULTS"
