#!/usr/bin/env bash
# Runs every test of the project: formatting and vet checks, the Go tests
# (with the race detector, including the fuzzers' seed corpora), then the
# Node interoperability and browser suite against a freshly built gateway.
# Installs missing dependencies first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '\.pb\.' || true)
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "== go test"
# A failing Go test must not skip the Node suite or the summary.
go_status=0
go test -race -count=1 -timeout 10m ./... 2>&1 | tee /tmp/cometgate-go-test.log || go_status=${PIPESTATUS[0]}

node_status=0
if [ -f test/node/package.json ]; then
  echo "== node interoperability and browser tests"
  mkdir -p /tmp/cometgate-ci
  go build -o /tmp/cometgate-ci/gateway ./cmd/gateway
  (cd test/node && CG_BIN=/tmp/cometgate-ci/gateway npm test) || node_status=$?
fi

echo "== summary"
echo "go test: $(grep -cE '^ok ' /tmp/cometgate-go-test.log) packages ok, $(grep -cE '^(FAIL|--- FAIL)' /tmp/cometgate-go-test.log) failures (exit $go_status)"
echo "node suite: exit $node_status"
if [ "$go_status" != 0 ] || [ "$node_status" != 0 ]; then
  exit 1
fi
echo "ALL TESTS PASSED"
