#!/usr/bin/env bash
# Builds the libcni test client (main.go) into OUT_DIR, offline: GOPATH mode on Debian's golang-go and
# golang-github-appc-cni-dev (the recipe and the stamp cache are in ../build-go.sh). Prints the binary's
# path. Used by test/helpers/cnitool.ts, the demo and the bench.
#   bash test/tools/cnitool/build.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
libcni=/usr/share/gocode/src/github.com/containernetworking/cni/libcni/api.go
if [ ! -f "$libcni" ]; then
  echo "cnitool: libcni source missing ($libcni); install golang-github-appc-cni-dev (scripts/host-deps.sh)" >&2
  exit 1
fi
exec bash "$here/../build-go.sh" "$here/main.go" "$out" cnitool "$libcni"
