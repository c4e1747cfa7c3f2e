#!/usr/bin/env bash
# Idempotent set-up from a fresh clone: uv, the project venv (.venv), and the embedded Label Studio
# (its own venv and a migrated data-dir template, cached per machine). Needs python3.11 and PyPI.
#   OTEL_LABELSTUDIO_CACHE   cache dir (default ~/.cache/otel-labelstudio)
set -euo pipefail

UV_VERSION=0.13.8
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${OTEL_LABELSTUDIO_CACHE:-$HOME/.cache/otel-labelstudio}"

step() { printf '==> %s\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "bootstrap: Python 3.11 is required (python3.11 or python3 on PATH)" >&2
  return 1
}

# uv: the one on PATH, else ours in the cache (a venv holding uv==$UV_VERSION).
if command -v uv >/dev/null; then
  uv="$(command -v uv)"
elif "$cache/tools/bin/uv" --version >/dev/null 2>&1; then
  uv="$cache/tools/bin/uv"
else
  step "installing uv $UV_VERSION into $cache/tools"
  python="$(find_python)"
  mkdir -p "$cache"
  staging="$(mktemp -d "$cache/tools.tmp-XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  "$python" -m venv "$staging"
  "$staging/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  # uv is a standalone binary, so the venv can be moved into place (atomic for the next run).
  rm -rf "$cache/tools"
  mv "$staging" "$cache/tools"
  trap - EXIT
  uv="$cache/tools/bin/uv"
fi
# The embedded Label Studio installer looks for uv on PATH too.
PATH="$(dirname "$uv"):$PATH"
export PATH

step "project venv (uv sync --frozen)"
"$uv" sync --frozen --python 3.11 --quiet

step "embedded Label Studio (first run: ~10 s install + ~40 s database migration)"
.venv/bin/python -m otel_labelstudio.embedded --install >/dev/null
step "ready"
