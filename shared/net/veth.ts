import { randomBytes } from "node:crypto";
import type { IpCommand } from "./ip.js";
import { q } from "./link.js";

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
