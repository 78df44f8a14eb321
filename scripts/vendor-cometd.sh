#!/usr/bin/env bash
# Copies the official CometD JavaScript client (the npm package "cometd",
# pinned in test/node/package.json) into gateway/internal/cometdjs/cometd,
# where the gateway embeds it for the demo page and the status page.
# Run after changing the pinned version: bash scripts/setup.sh (or
# cd test/node && npm ci), then bash scripts/vendor-cometd.sh, then
# go test ./gateway/internal/cometdjs and update Version in cometdjs.go
# and the version in gateway/internal/cometdjs/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

src=test/node/node_modules/cometd
dst=gateway/internal/cometdjs/cometd
if [ ! -f "$src/package.json" ]; then
  echo "vendor-cometd: $src is missing; run: cd test/node && npm ci" >&2
  exit 1
fi

rm -rf "$dst"
mkdir -p "$dst"
# Every ES module of the package (cometd.js imports them all), its license,
# and package.json, which names the version.
cp "$src"/*.js "$src/LICENSE" "$src/package.json" "$dst/"
if [ -f "$src/NOTICE" ]; then cp "$src/NOTICE" "$dst/"; fi
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dst/package.json")
echo "vendor-cometd: copied cometd $version into $dst"
