#!/usr/bin/env bash
# Builds the libcni test client (main.go) into OUT_DIR, offline: GOPATH mode on Debian's golang-go and
# golang-github-appc-cni-dev. Rebuilds only when main.go, libcni or the Go toolchain changed (a stamp
# next to the binary). Prints the binary's path. Used by test/helpers/cnitool.ts, the demo and the bench.
#   bash test/tools/cnitool/build.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
sys=/usr/share/gocode
libcni=$sys/src/github.com/containernetworking/cni/libcni/api.go
if [ ! -f "$libcni" ]; then
  echo "cnitool: libcni source missing ($libcni); install golang-github-appc-cni-dev (scripts/host-deps.sh)" >&2
  exit 1
fi
stamp=$({ cat "$here/main.go" "$libcni"; go version; } | sha256sum | cut -d' ' -f1)
bin=$out/cnitool
if [ -x "$bin" ] && [ "$(cat "$out/cnitool.sha256" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out"
tmp=$bin.tmp-$$
trap 'rm -f "$tmp"' EXIT
GO111MODULE=off GOPATH="$out/gopath:$sys" GOCACHE="$out/gocache" GOFLAGS='' CGO_ENABLED=0 \
  go build -o "$tmp" "$here/main.go" >&2
# Renamed into place so a concurrent run never executes a half-written binary.
mv -f "$tmp" "$bin"
echo "$stamp" >"$out/cnitool.sha256"
echo "$bin"
