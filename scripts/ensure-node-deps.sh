#!/usr/bin/env bash
# Idempotent: the npm packages of tests/js (the OpenTelemetry JS SDK that sends spans to `serve` in
# tests/integration/test_serve_js.py), installed with `npm ci` from the committed package-lock.json
# into tests/js/node_modules (gitignored). Runs npm only when node_modules is missing or older than
# package.json / package-lock.json; quiet otherwise, and quiet on success (npm's log is shown only
# when it fails). Needs Node.js >= 20.6 and npm on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/js"

stamp=node_modules/.otel-labelstudio-installed
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "ensure-node-deps: $tool is not on PATH (tests/js needs Node.js >= 20.6 and npm)" >&2
    exit 1
  fi
done

printf '==> %s\n' "npm ci in tests/js" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-node-deps: npm ci failed in tests/js" >&2
  exit 1
fi
touch "$stamp"
