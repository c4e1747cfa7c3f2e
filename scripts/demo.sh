#!/usr/bin/env bash
# Set up (idempotent), then run the demo: arguments go to `otel-labelstudio demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/otel-labelstudio demo "$@"
