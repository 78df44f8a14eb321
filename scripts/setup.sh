#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: Go modules, the
# Node test suite's npm packages, and Chromium for the browser tests.
# Idempotent: it skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is missing; install the Debian package 'chromium' (needs root)" >&2
    exit 1
  fi
fi

if [ -f test/node/package-lock.json ]; then
  if [ ! -d test/node/node_modules ] || [ test/node/package-lock.json -nt test/node/node_modules/.package-lock.json ]; then
    echo "setup: npm ci in test/node"
    (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
