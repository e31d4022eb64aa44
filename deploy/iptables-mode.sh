#!/bin/sh
# iptables-mode [--print] COMMAND [ARG]...
#
# Points iptables, ip6tables and their -save/-restore at the variant the node already uses (legacy or
# nft), then execs COMMAND. The image carries both variants (Debian's iptables package), but the node's
# kubelet, kube-proxy and firewall use one: rules weftd wrote in the other would live in a second set of
# tables that the kernel also runs, so a FORWARD policy of DROP in the node's variant would still drop
# what weftd's FLANNEL-FWD accepts in its own. flannel's image solves this with kubernetes-sigs'
# iptables-wrappers; this is the same decision in a few lines:
#   1. kubelet (1.24 and later) creates the chain KUBE-IPTABLES-HINT (older ones KUBE-KUBELET-CANARY) in
#      the mangle table of the variant it uses: that variant wins;
#   2. else the variant with more rules (IPv4 and IPv6) wins; nft on a tie, Debian's default.
# The iptables tables seen are those of the network namespace it runs in: the node's, under hostNetwork.
# --print prints the choice and its reason and exits without changing anything.
set -eu

print=false
if [ "${1:-}" = "--print" ]; then
  print=true
  shift
fi

hint() { "iptables-$1-save" -t mangle 2>/dev/null | grep -qE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) '; }
rules() { { "iptables-$1-save" 2>/dev/null; "ip6tables-$1-save" 2>/dev/null; } | grep -c '^-' || true; }

if hint legacy; then
  mode=legacy why="kubelet's hint chain is in the legacy tables"
elif hint nft; then
  mode=nft why="kubelet's hint chain is in the nft tables"
else
  legacy=$(rules legacy) nft=$(rules nft)
  if [ "$legacy" -gt "$nft" ]; then mode=legacy; else mode=nft; fi
  why="$legacy legacy rules, $nft nft rules"
fi

if $print; then
  echo "$mode ($why)"
  exit 0
fi
echo "iptables-mode: using iptables-$mode ($why)" >&2
for t in iptables ip6tables; do
  update-alternatives --quiet --set "$t" "/usr/sbin/$t-$mode"
done
exec "$@"
