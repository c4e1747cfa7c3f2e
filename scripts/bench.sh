#!/usr/bin/env bash
# The app-thread benchmark: our exporter against LangChain's LabelStudioCallbackHandler on the same
# fake model and a real Label Studio (started for the run unless --url/--api-key are given). Builds
# the handler's own venv on first use. Args go to tests/bench/bench_app_thread.py (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh

cache="${OTEL_LABELSTUDIO_CACHE:-$HOME/.cache/otel-labelstudio}"
# bootstrap.sh puts uv in the cache when none is on PATH; the benchmark builds a venv with it.
PATH="$PATH:$cache/tools/bin"
export PATH

exec .venv/bin/python tests/bench/bench_app_thread.py "$@"
