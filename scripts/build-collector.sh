#!/usr/bin/env bash
# Builds (once) the Collector distribution of collector/manifest.yaml with ocb, or telemetrygen,
# from the Go module proxy, and prints the path of the cached binary on stdout.
#
#   bash scripts/build-collector.sh                # otelcol-labelstudio (first time 3-7 min)
#   bash scripts/build-collector.sh telemetrygen   # the Collector project's load generator
#
# Binaries live outside the repository's tracked files, under
# $OTEL_LABELSTUDIO_CACHE (default ~/.cache/otel-labelstudio):
#   collector/<hash of collector/manifest.yaml>/otelcol-labelstudio
#   go-tools/{ocb,telemetrygen}-v<version>/
# and are reused while they are there. Exit status 3: Go is needed and not on PATH.
set -euo pipefail

COLLECTOR_VERSION=0.152.0 # ocb and every component in the manifest (see its header for why)
TELEMETRYGEN_VERSION=0.161.0
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${OTEL_LABELSTUDIO_CACHE:-$HOME/.cache/otel-labelstudio}"
what="${1:-collector}"

step() { printf '==> %s\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null; then
    echo "build-collector: Go is not on PATH (needed to build $what once)" >&2
    exit 3
  fi
  # The proxy this machine reaches; `direct` for modules it does not hold.
  export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
  export GOFLAGS="${GOFLAGS:--buildvcs=false}"
}

# One build at a time per cache (pytest-xdist workers, two checkouts): the others wait for it.
mkdir -p "$cache"
exec 9>"$cache/.build-collector.lock"
flock 9

case "$what" in
  telemetrygen)
    bin_dir="$cache/go-tools/telemetrygen-v$TELEMETRYGEN_VERSION"
    if [ ! -x "$bin_dir/telemetrygen" ]; then
      need_go
      step "go install telemetrygen v$TELEMETRYGEN_VERSION"
      GOBIN="$bin_dir" go install \
        "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION"
    fi
    echo "$bin_dir/telemetrygen"
    ;;
  collector)
    # The manifest pins every version (ocb's is COLLECTOR_VERSION, also dist.version there).
    key="$(sha256sum collector/manifest.yaml | cut -c1-16)"
    out_dir="$cache/collector/$key"
    binary="$out_dir/otelcol-labelstudio"
    if [ ! -x "$binary" ]; then
      need_go
      ocb_dir="$cache/go-tools/ocb-v$COLLECTOR_VERSION"
      if [ ! -x "$ocb_dir/builder" ]; then
        step "go install ocb v$COLLECTOR_VERSION"
        GOBIN="$ocb_dir" go install "go.opentelemetry.io/collector/cmd/builder@v$COLLECTOR_VERSION"
      fi
      mkdir -p "$cache/collector"
      staging="$(mktemp -d "$cache/collector/build.tmp-XXXXXX")"
      trap 'rm -rf "$staging"' EXIT
      cp collector/manifest.yaml "$staging/manifest.yaml"
      step "building the Collector (first time: a few minutes; cached in $out_dir)"
      start=$SECONDS
      # ocb generates the sources; `go build` compiles them. Not ocb's own `go mod tidy`: tidy
      # also resolves the test-only modules of every dependency, and the proxy here refuses
      # some of those (e.g. extensionauthtest v0.152.0); the build needs only what it imports.
      (
        cd "$staging"
        "$ocb_dir/builder" --config manifest.yaml --skip-get-modules --skip-compilation
        cd build
        GOFLAGS="$GOFLAGS -mod=mod" go build -trimpath -ldflags="-s -w" -o otelcol-labelstudio .
      ) >"$staging/build.log" 2>&1 || {
        grep -v '^go: \(downloading\|finding\|found\)' "$staging/build.log" | tail -40 >&2
        exit 1
      }
      step "Collector built in $((SECONDS - start)) s"
      mkdir -p "$staging/final"
      mv "$staging/build/otelcol-labelstudio" "$staging/final/"
      # Rename into place: a reader never sees half a binary.
      rm -rf "$out_dir"
      mv "$staging/final" "$out_dir"
    fi
    echo "$binary"
    ;;
  *)
    echo "usage: build-collector.sh [collector|telemetrygen]" >&2
    exit 2
    ;;
esac
