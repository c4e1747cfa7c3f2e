#!/usr/bin/env bash
# The whole check, as CI runs it: set-up, lint, format, types, then unit and integration tests
# (against a real Label Studio). Benchmarks (tests/bench) are separate. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh

echo "==> ruff check" >&2
.venv/bin/ruff check .
echo "==> ruff format --check" >&2
.venv/bin/ruff format --check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> pytest" >&2
bash scripts/ensure-chromium.sh  # Debian's chromium for tests/integration/test_browser.py
# The Collector and telemetrygen for tests/integration/test_collector.py, built once and cached
# (first time: minutes, outside pytest's per-test timeout); without Go (status 3) those tests skip.
for tool in collector telemetrygen; do
  bash scripts/build-collector.sh "$tool" >/dev/null || [ "$?" -eq 3 ]
done
# `|| status=$?` keeps set -e from exiting before we can report; 5 (no tests collected) is a
# failure too, which it already is by being non-zero.
if [ "$#" -eq 0 ]; then
  set -- tests/unit tests/integration
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
fi
exit "$status"
