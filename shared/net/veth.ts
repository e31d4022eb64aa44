import { type IpCommand, q } from "./ip.js";
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
    line: `link add name ${q(p.hostName)}${mtu} type veth peer name ${q(p.peerName)}${mtu}${mac} netns ${q(p.peerNetns)}`,
    what: "failed to make veth pair",
  };
}

export type PodVethRemoval = "deleted" | "absent" | "not-veth" | "foreign";

// Runs in the caller's namespace (dash), names and paths as arguments, never parsed: lists the ports of
// the bridge ("12: vethab12cd34@if2: <...", nothing when there is no such bridge), then enters the pod.
// Inside, it reads the link once and deletes it only when it is a veth whose peer's ifindex (the N of
// "eth0@ifN: <", taken after the last "@if" before ": <", as ":" is no name character) starts a port
// line; it says what it found. Deleting one end of a veth removes both.
const REMOVE_SCRIPT = `nl='
'
ports="$nl$(ip -o link show master "$1" 2>/dev/null)"
exec nsenter --net="$2" -- sh -c '
out=$(ip -o -d link show dev "$1" 2>/dev/null) || { echo absent; exit 0; }
case "$out" in *" veth "*) ;; *) echo not-veth; exit 0;; esac
head=\${out%%": <"*}; peer=\${head##*@if}
case "$2" in *"$3$peer: "*) ip link del dev "$1" && echo deleted; exit $?;; esac
echo foreign' sh "$3" "$ports" "$nl"`;

/**
 * Deletes the veth `ifname` in the namespace at `netns` if its peer is a port of `bridge` (a host bridge,
 * read through ip in the same process: the caller's /sys may show another namespace). One process for
 * the whole check and deletion. Refuses nothing: every name travels as an argument.
 */
export async function removePodVethOfBridge(
  netns: string,
  ifname: string,
  bridge: string,
): Promise<PodVethRemoval> {
  const r = await run("sh", ["-c", REMOVE_SCRIPT, "sh", bridge, netns, ifname]);
  return r.stdout.trim() as PodVethRemoval;
}
