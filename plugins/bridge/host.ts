import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { Logger } from "../../shared/log.js";
import {
  type AddrRecord,
  addrDel,
  addrReplace,
  addrShow,
  addrsOf,
  conflictingAddrs,
  hasAddr,
} from "../../shared/net/addr.js";
import {
  bridgeAdd,
  bridgePortIndexes,
  bridgePortSet,
  bridgePorts,
  setPortVlans,
} from "../../shared/net/bridge.js";
import { IpBatchError, type IpCommand, type IpReads, ipBatch, ipBatchThenPod } from "../../shared/net/ip.js";
import { canonicalCidr } from "../../shared/net/ipnet.js";
import {
  kindOf,
  type LinkRecord,
  linkDel,
  linkNameError,
  linkSetAddress,
  linkSetMaster,
  linkSetMtu,
  linkSetPromisc,
  linkSetUp,
  linkShow,
  type SysLink,
  sysLink,
  validLinkName,
} from "../../shared/net/link.js";
import { randomBytes } from "../../shared/net/random.js";
import type { SysctlWrite } from "../../shared/net/sysctl.js";
import { trySysctl } from "../../shared/net/sysctl.js";
import { randomVethName, vethAdd } from "../../shared/net/veth.js";
import type { BridgeSettings } from "./config.js";

/**
 * The host side of an ADD in one `ip -batch`: the bridge (created, or reused with its MTU reconciled),
 * the veth pair with its peer placed in the pod, the port (master, up, hairpin, isolated) and the gateway
 * addresses on the bridge with its MAC pinned. The bridge's addresses are read in the same batch, just
 * before the gateways are put on, so the reference's ensureAddr rules can be judged afterwards.
 */

/** What this call has created on the host so far, for the rollback to read. */
export interface HostAttachment {
  hostVeth?: string;
  /** Gateway CIDRs this call put on the bridge (they were not there before). */
  addedGateways: string[];
}

const bridgeError = (brName: string, reason: string) =>
  new CniError(ErrorCode.Internal, `failed to create bridge ${JSON.stringify(brName)}: ${reason}`);

/** The checks ensureBridge would fail on, made before anything is changed (or IPAM is called). */
export function preflightBridge(n: BridgeSettings): SysLink | undefined {
  if (!validLinkName(n.brName)) {
    throw bridgeError(n.brName, `could not add ${JSON.stringify(n.brName)}: ${linkNameError(n.brName)}`);
  }
  const br = sysLink(n.brName);
  if (br && !br.isBridge) {
    throw bridgeError(n.brName, `${JSON.stringify(n.brName)} already exists but is not a bridge`);
  }
  return br;
}

function randomMac(): string {
  const b = randomBytes(6);
  // Locally administered unicast, as the kernel's eth_random_addr.
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

interface Plan {
  cmds: IpCommand[];
  /** Index of the veth creation, of the bridge-address read (or -1). */
  vethAt: number;
  addrReadAt: number;
}

function plan(
  n: BridgeSettings,
  br: SysLink | undefined,
  args: PodRef,
  hostVeth: string,
  gateways: string[],
  log: Logger,
): Plan {
  const cmds: IpCommand[] = [];
  const name = n.brName;
  if (!br) {
    cmds.push(
      bridgeAdd(name, {
        ...(n.mtu ? { mtu: n.mtu } : {}),
        // ensureAddr pins the MAC the bridge had before its first port; giving it one at creation is the same.
        ...(gateways.length > 0 ? { mac: randomMac() } : {}),
        vlanFiltering: n.vlan !== 0 || n.vlans.length > 0,
      }),
    );
  } else if (n.mtu && br.mtu !== n.mtu) {
    // Beyond the reference, which sets the MTU only at creation: a bridge left with an old MTU makes
    // large transfers hang after FLANNEL_MTU changed (complaint 6.5).
    log.warn("bridge MTU differs from the configured one; setting it", {
      bridge: name,
      from: br.mtu,
      to: n.mtu,
    });
    cmds.push(linkSetMtu(name, n.mtu));
  }
  if (n.promiscMode && !br?.promisc) cmds.push(linkSetPromisc(name, true));
  cmds.push(linkSetUp(name));
  const vethAt = cmds.length;
  cmds.push(
    vethAdd({
      hostName: hostVeth,
      peerName: args.ifname,
      peerNetns: args.netns,
      ...(n.mtu ? { mtu: n.mtu } : {}),
      ...(n.mac ? { peerMac: n.mac } : {}),
    }),
  );
  cmds.push({
    ...linkSetMaster(hostVeth, name, `failed to connect ${JSON.stringify(hostVeth)} to bridge ${name}`),
    line: `${linkSetMaster(hostVeth, name, "").line} up`,
  });
  cmds.push(bridgePortSet(hostVeth, { hairpin: n.hairpinMode, isolated: n.portIsolation }));
  let addrReadAt = -1;
  if (gateways.length > 0) {
    if (br) {
      addrReadAt = cmds.length;
      cmds.push(addrShow(name, `failed to set bridge addr: could not get list of IP addresses`));
    }
    for (const gw of gateways)
      cmds.push(
        addrReplace(
          gw,
          name,
          `failed to set bridge addr: could not add IP address to ${JSON.stringify(name)}`,
        ),
      );
    // Pin the MAC so the bridge stops taking the lowest port MAC as pods come and go.
    if (br)
      cmds.push(linkSetAddress(name, br.address, "failed to set bridge addr: could not set bridge's mac"));
  }
  return { cmds, vethAt, addrReadAt };
}

/** What to run inside the pod right after the host side (see pod.ts). */
export interface PodPlan {
  cmds: IpCommand[];
  sysctls: SysctlWrite[];
}

export interface PodRef {
  netns: string;
  ifname: string;
}

/**
 * Creates or reuses the bridge and attaches a new veth for the pod, recording in `state` what exists as
 * soon as it may exist, so the caller's rollback can remove it after any later failure.
 */
export async function attachPod(
  n: BridgeSettings,
  pod: PodRef,
  gateways: string[],
  podPlan: PodPlan,
  log: Logger,
  state: HostAttachment,
): Promise<{ hostVeth: string; podReads: IpReads }> {
  for (let attempt = 0; ; attempt++) {
    const br = preflightBridge(n);
    const hostVeth = randomVethName();
    const p = plan(n, br, pod, hostVeth, gateways, log);
    let before: AddrRecord[] = [];
    let podReads: IpReads = [];
    state.hostVeth = hostVeth;
    try {
      // The host batch and the pod's configuration in one process (the pod part runs only if the host
      // part succeeded).
      const reads = await ipBatchThenPod(p.cmds, podPlan.cmds, {
        netns: pod.netns,
        sysctls: podPlan.sysctls,
      });
      before = p.addrReadAt >= 0 ? addrsOf(reads.host[0]) : [];
      state.addedGateways = gateways.filter((g) => !hasAddr(before, g));
      podReads = reads.pod;
    } catch (err) {
      if (!(err instanceof IpBatchError)) throw err;
      if (err.stage === "pod") {
        state.addedGateways = gateways.filter((g) => !hasAddr(before, g));
        throw new CniError(ErrorCode.Internal, err.message);
      }
      // Whatever got past the address read may have put gateways on; count them all as ours then.
      if (p.addrReadAt >= 0 && err.index > p.addrReadAt) {
        before = addrsOf(err.reads[0]);
        state.addedGateways = gateways.filter((g) => !hasAddr(before, g));
      } else if (p.addrReadAt < 0 && err.index > p.vethAt + 2) {
        state.addedGateways = [...gateways];
      }
      if (err.index === 0 && !br && /file exists/.test(err.reason) && attempt < 10) continue; // raced another ADD
      if (err.index === p.vethAt && /file exists/.test(err.reason) && attempt < 10) {
        if (await replaceStalePodLink(n, pod, log)) continue;
        if (sysLink(hostVeth)) continue; // the random host name was taken: pick another, as the reference
        throw new CniError(ErrorCode.Internal, `container veth name provided (${pod.ifname}) already exists`);
      }
      if (err.index === -1) throw new CniError(ErrorCode.Internal, err.reason);
      if (err.index < p.vethAt) throw bridgeError(n.brName, err.message);
      throw new CniError(ErrorCode.Internal, err.message);
    }
    if (n.vlan !== 0 || n.vlans.length > 0) {
      try {
        await setPortVlans(n.brName, hostVeth, {
          vlan: n.vlan,
          trunk: n.vlans,
          removeDefault: !n.preserveDefaultVlan,
        });
      } catch (err) {
        throw new CniError(ErrorCode.Internal, (err as Error).message);
      }
    }
    trySysctl(`net/ipv6/conf/${n.brName}/accept_ra`, "0");
    trySysctl(`net/ipv6/conf/${hostVeth}/accept_ra`, "0");
    await settleBridgeAddresses(n, hostVeth, before, gateways, log);
    return { hostVeth, podReads };
  }
}

/**
 * ensureAddr's verdict on what was on the bridge before: an identical address is fine; for IPv4 any other
 * address, for IPv6 an overlapping one, conflicts. The reference fails unless forceAddress. weft also
 * replaces it when no other pod is attached (a node whose subnet changed, complaint 6.2) and logs it.
 */
async function settleBridgeAddresses(
  n: BridgeSettings,
  hostVeth: string,
  before: AddrRecord[],
  gateways: string[],
  log: Logger,
): Promise<void> {
  const stale = new Map<string, AddrRecord>();
  let firstConflict: string | undefined;
  // This call's own gateways never conflict with each other (several v4 ranges give several gateways;
  // the reference fails on the second one).
  const own = new Set(gateways.map(canonicalCidr));
  for (const gw of gateways) {
    for (const a of conflictingAddrs(before, gw)) {
      const cidr = canonicalCidr(`${a.local}/${a.prefixlen}`);
      if (own.has(cidr)) continue;
      stale.set(cidr, a);
      firstConflict ??= gw;
    }
  }
  if (stale.size === 0) return;
  const others = bridgePorts(n.brName).filter((p) => p !== hostVeth);
  if (!n.forceAddress && others.length > 0) {
    throw new CniError(
      ErrorCode.Internal,
      `failed to set bridge addr: ${JSON.stringify(n.brName)} already has an IP address different from ${firstConflict}`,
      `the bridge still carries ${[...stale.keys()].join(", ")} (the node's pod subnet changed?) and ${others.length} other port(s) are attached: delete the pods of the old subnet, or run \`ip addr flush dev ${n.brName}\` and recreate them, or set "forceAddress": true`,
    );
  }
  if (!n.forceAddress) {
    log.warn("replacing stale bridge address: no other pod is attached", {
      bridge: n.brName,
      stale: [...stale.keys()].join(","),
      gateway: gateways.join(","),
    });
  }
  const cmds: IpCommand[] = [...stale.keys()].map((c) =>
    addrDel(
      c,
      n.brName,
      `failed to set bridge addr: could not remove IP address from ${JSON.stringify(n.brName)}`,
    ),
  );
  // Removing a primary v4 address also removes its secondaries; put the gateways back in case.
  for (const gw of gateways)
    cmds.push(
      addrReplace(
        gw,
        n.brName,
        `failed to set bridge addr: could not add IP address to ${JSON.stringify(n.brName)}`,
      ),
    );
  await ipBatch(cmds).catch((err) => {
    throw new CniError(ErrorCode.Internal, (err as Error).message);
  });
}

/**
 * A retried ADD finds CNI_IFNAME in the pod. When it is a veth whose peer is a port of our bridge (what a
 * killed earlier ADD leaves), remove it and report true so the caller tries again.
 */
async function replaceStalePodLink(n: BridgeSettings, pod: PodRef, log: Logger): Promise<boolean> {
  const reads = await ipBatch([linkShow(pod.ifname)], { netns: pod.netns, details: true }).catch(() => []);
  const link = reads[0]?.[0] as LinkRecord | undefined;
  // A peer in the pod itself has no link_netnsid; its ifindex means nothing on the host.
  if (!link || kindOf(link) !== "veth" || link.link_index === undefined || link.link_netnsid === undefined)
    return false;
  const hostPort = bridgePortIndexes(n.brName).get(link.link_index);
  if (!hostPort) return false;
  log.warn("replacing the pod interface left by an earlier ADD", { ifname: pod.ifname, hostVeth: hostPort });
  await ipBatch([linkDel(hostPort)]);
  return true;
}

/** Removes a host veth (and with it the pod end); a missing link is fine. */
export async function removeHostVeth(hostVeth: string): Promise<void> {
  await ipBatch([linkDel(hostVeth)]);
}

/** Removes gateway addresses this call put on the bridge. */
export async function removeGateways(brName: string, cidrs: string[]): Promise<void> {
  if (cidrs.length === 0) return;
  await ipBatch(
    cidrs.map((c) => addrDel(c, brName, `could not remove IP address from ${JSON.stringify(brName)}`)),
  );
}
