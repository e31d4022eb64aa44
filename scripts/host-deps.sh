#!/usr/bin/env bash
# Installs the system packages the tests, the demo and the benchmarks use, only when something is missing.
# Debian packages only: the machine reaches the npm registry and Debian's mirror, nothing else.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need+=(iproute2)
have iptables-restore || need+=(iptables)
have nft || need+=(nftables)
have conntrack || need+=(conntrack)
have flock || need+=(util-linux)
have nsenter || need+=(util-linux)
have socat || need+=(socat)
have ping || need+=(iputils-ping)
have strace || need+=(strace)
have iperf3 || need+=(iperf3)
have go || need+=(golang-go)
# weftd's etcd store tests run a throwaway etcd (3.4 in bookworm; flanneld's v3 API) and use etcdctl.
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have openssl || need+=(openssl)
# The deploy manifest's test reads deploy/weft.yml with PyYAML (test/helpers/yaml.ts).
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || need+=(golang-github-appc-cni-dev)
[ -f /usr/share/gocode/src/github.com/containerd/go-cni/cni.go ] || need+=(golang-github-containerd-go-cni-dev)

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "host-deps: missing ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "host-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# The kernel modules the pod path uses; loading is best effort (they may be built in).
for m in bridge veth vxlan br_netfilter nf_conntrack xt_comment xt_multiport xt_addrtype xt_mark; do
  modprobe -q "$m" 2>/dev/null || true
done
