#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: Go modules, the
# Node test suite's npm packages, Chromium for the browser tests and
# openssl for the TLS tests' certificate authority.
# Idempotent: it skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download

# chromium for the browser tests; openssl makes the TLS tests' CA.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install the Debian packages (needs root)" >&2
    exit 1
  fi
fi

if [ -f test/node/package-lock.json ]; then
  if [ ! -d test/node/node_modules ] || [ test/node/package-lock.json -nt test/node/node_modules/.package-lock.json ]; then
    echo "setup: npm ci in test/node"
    (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
