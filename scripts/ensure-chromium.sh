#!/usr/bin/env bash
# Idempotent: Debian's chromium for the real-browser test (tests/integration/test_browser.py drives
# it with Playwright through executable_path; no Playwright browser download). Installs it with
# apt-get when /usr/bin/chromium is missing (as root, or through sudo); quiet when it is there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's chromium package as root" >&2
  exit 1
fi
printf '==> %s\n' "installing Debian's chromium (apt-get)" >&2
"${as_root[@]}" apt-get update -qq >/dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq chromium >/dev/null
if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-chromium: apt-get installed chromium but /usr/bin/chromium is still missing" >&2
  exit 1
fi
