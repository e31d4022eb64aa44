#!/usr/bin/env bash
# Builds one Go test client (a single main.go) into OUT_DIR/NAME, offline: GOPATH mode on Debian's golang-go
# and the golang-*-dev source packages under /usr/share/gocode, CGO off. Rebuilds only when main.go, the
# library files named after NAME or the Go toolchain changed (a stamp next to the binary). Prints the
# binary's path. Used by cnitool/build.sh and gocni/build.sh, which check their libraries first.
#   bash test/tools/build-go.sh MAIN_GO OUT_DIR NAME [LIBRARY_FILE...]
set -euo pipefail
main=${1:?usage: build-go.sh MAIN_GO OUT_DIR NAME [LIBRARY_FILE...]}
out=${2:?usage: build-go.sh MAIN_GO OUT_DIR NAME [LIBRARY_FILE...]}
name=${3:?usage: build-go.sh MAIN_GO OUT_DIR NAME [LIBRARY_FILE...]}
shift 3
sys=/usr/share/gocode
mkdir -p "$out"
out=$(cd "$out" && pwd) # GOPATH entries must be absolute
stamp=$({ cat "$main" "$@"; go version; } | sha256sum | cut -d' ' -f1)
bin=$out/$name
if [ -x "$bin" ] && [ "$(cat "$out/$name.sha256" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi
tmp=$bin.tmp-$$
trap 'rm -f "$tmp"' EXIT
GO111MODULE=off GOPATH="$out/gopath:$sys" GOCACHE="$out/gocache" GOFLAGS='' CGO_ENABLED=0 \
  go build -o "$tmp" "$main" >&2
# Renamed into place so a concurrent run never executes a half-written binary.
mv -f "$tmp" "$bin"
echo "$stamp" >"$out/$name.sha256"
echo "$bin"
