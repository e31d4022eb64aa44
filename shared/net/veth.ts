import type { IpCommand } from "./ip.js";
import { q } from "./link.js";
import { randomBytes } from "./random.js";
import { run } from "./run.js";

/**
 * veth pairs. The pair is created from the host with its peer placed straight into the pod's namespace
 * (`peer ... netns <path>`): one netlink request instead of the reference's create-inside-then-move.
 */

/** The reference's host-side name: "veth" + 4 random bytes in hex. */
export function randomVethName(): string {
  return `veth${randomBytes(4).toString("hex")}`;
}

export interface VethPair {
  hostName: string;
  peerName: string;
  /** Namespace path the peer goes to. */
  peerNetns: string;
  mtu?: number;
  /** MAC of the peer (the container side). */
  peerMac?: string;
}

export function vethAdd(p: VethPair): IpCommand {
  const mtu = p.mtu ? ` mtu ${p.mtu}` : "";
  const mac = p.peerMac ? ` address ${p.peerMac}` : "";
  return {
    line: `link add ${q(p.hostName)}${mtu} type veth peer name ${q(p.peerName)}${mtu}${mac} netns ${q(p.peerNetns)}`,
    what: "failed to make veth pair",
  };
}

export type PodVethRemoval = "deleted" | "absent" | "not-veth" | "foreign";

// Runs inside the pod (dash): reads the link once, deletes it only when it is a veth whose peer ifindex
// is one of the arguments, and says what it found. "@if<N>" is how ip names a peer in another namespace.
const REMOVE_SCRIPT = `out=$(ip -o -d link show dev "$1" 2>/dev/null) || { echo absent; exit 0; }
case "$out" in *" veth "*) ;; *) echo not-veth; exit 0;; esac
ifname=$1; shift
for i in "$@"; do case "$out" in *"@if$i:"*) ip link del dev "$ifname" && echo deleted; exit $?;; esac; done
echo foreign`;

/**
 * Deletes the veth `ifname` in the namespace at `netns` if its peer is one of `peerIndexes` (host
 * ifindexes), in one process entering the namespace. Deleting one end of a veth removes both.
 */
export async function removePodVeth(
  netns: string,
  ifname: string,
  peerIndexes: number[],
): Promise<PodVethRemoval> {
  const r = await run("sh", ["-c", REMOVE_SCRIPT, "sh", ifname, ...peerIndexes.map(String)], { netns });
  return r.stdout.trim() as PodVethRemoval;
}
