#!/usr/bin/env bash
# Builds the go-cni test client (main.go) into OUT_DIR, offline: GOPATH mode on Debian's golang-go,
# golang-github-containerd-go-cni-dev and golang-github-appc-cni-dev (the recipe and the stamp cache are in
# ../build-go.sh; the stamp covers every go-cni source file and libcni's api.go). Prints the binary's path.
# Used by test/helpers/gocni.ts.
#   bash test/tools/gocni/build.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
src=/usr/share/gocode/src/github.com
gocni=$src/containerd/go-cni
libcni=$src/containernetworking/cni/libcni/api.go
if [ ! -f "$gocni/cni.go" ]; then
  echo "gocni: go-cni source missing ($gocni); install golang-github-containerd-go-cni-dev (scripts/host-deps.sh)" >&2
  exit 1
fi
if [ ! -f "$libcni" ]; then
  echo "gocni: libcni source missing ($libcni); install golang-github-appc-cni-dev (scripts/host-deps.sh)" >&2
  exit 1
fi
exec bash "$here/../build-go.sh" "$here/main.go" "$out" gocni "$gocni"/*.go "$libcni"
