import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { Logger } from "../../shared/log.js";
import {
  type AddrRecord,
  addrCidr,
  addrDel,
  addrReplace,
  conflictingAddrs,
  hasAddr,
} from "../../shared/net/addr.js";
import {
  bridgeAdd,
  bridgePortSet,
  bridgePortsShow,
  bridgesShow,
  defaultPvid,
  readBridgePorts,
  setPortVlans,
} from "../../shared/net/bridge.js";
import {
  batchWordProblem,
  IpBatchError,
  type IpCommand,
  type IpDialog,
  type IpReads,
  ipBatch,
  ipBatchThenPod,
} from "../../shared/net/ip.js";
import { formatCidr, parseCidr } from "../../shared/net/ipaddr.js";
import {
  isPromisc,
  kindOf,
  type LinkRecord,
  linkDel,
  linkNamed,
  linkNameError,
  linkSetAddress,
  linkSetMaster,
  linkSetMtu,
  linkSetPromisc,
  linkSetUp,
  linkShow,
  readLink,
  validLinkName,
} from "../../shared/net/link.js";
import { randomBytes } from "../../shared/net/random.js";
import type { SysctlWrite } from "../../shared/net/sysctl.js";
import { trySysctl } from "../../shared/net/sysctl.js";
import { randomVethName, vethAdd } from "../../shared/net/veth.js";
import type { BridgeSettings } from "./config.js";

/**
 * The host side of an ADD in one `ip -batch`, held as a dialog: ip first lists the bridges (and, when
 * the bridge's MTU or addresses need a verdict, its ports); from that answer weft writes the rest: the
 * bridge (created, or reused with its MTU reconciled and stale addresses replaced), the veth pair with
 * its peer placed in the pod, the port (master, up, hairpin, isolated), the gateway addresses with the
 * bridge's MAC pinned, and a read of the new host veth. Everything is read through ip (netlink): /sys
 * may show another namespace (link.ts).
 */

/** What this call has created on the host so far, for the rollback to read. */
export interface HostAttachment {
  hostVeth?: string;
  /** Gateway CIDRs this call put on the bridge (they were not there before). */
  addedGateways: string[];
}

const bridgeError = (brName: string, reason: string, options?: ErrorOptions) =>
  new CniError(
    ErrorCode.Internal,
    `failed to create bridge ${JSON.stringify(brName)}: ${reason}`,
    "",
    options,
  );

export interface PodRef {
  netns: string;
  ifname: string;
}

/**
 * A name or path that goes into an ip batch line must survive ip's batch reader (ip.ts q). The reference
 * passes names through netlink and has no such limit; weft refuses up front, before IPAM.
 */
function refuseUncarriable(what: string, word: string, code: number, from: string): void {
  const problem = batchWordProblem(word);
  if (!problem) return;
  throw new CniError(
    code,
    `${what} ${JSON.stringify(word)} cannot be used: ${problem}`,
    `weft configures links through \`ip -batch\`, which cannot carry this ${what}; choose another ${from}`,
  );
}

/** The checks ensureBridge would fail on and the names ip must carry, before anything is changed. */
export function preflightBridge(n: BridgeSettings, pod: PodRef): void {
  if (!validLinkName(n.brName)) {
    throw bridgeError(n.brName, `could not add ${JSON.stringify(n.brName)}: ${linkNameError(n.brName)}`);
  }
  refuseUncarriable("bridge name", n.brName, ErrorCode.InvalidNetworkConfig, 'value for "bridge"');
  checkPodNames(pod);
}

/** CNI_IFNAME and CNI_NETNS as ip batch words (ADD and CHECK name them in batch lines). */
export function checkPodNames(pod: PodRef): void {
  refuseUncarriable("interface name", pod.ifname, ErrorCode.InvalidEnvironment, "CNI_IFNAME");
  refuseUncarriable("netns path", pod.netns, ErrorCode.InvalidEnvironment, "CNI_NETNS");
}

function randomMac(): string {
  const b = randomBytes(6);
  // Locally administered unicast, as the kernel's eth_random_addr.
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** What the dialog's reads showed before anything changed. */
interface Seen {
  /** The bridge, when it existed. */
  br?: LinkRecord;
  /** Its addresses. */
  before: AddrRecord[];
  /** Addresses in the way of the gateways, to be removed (secondaries first). */
  stale: AddrRecord[];
  /** Set the existing bridge's MTU to the configured one. */
  setMtu: boolean;
}

/**
 * ensureAddr's verdict on what was on the bridge before: an identical address is fine; for IPv4 any other
 * address, for IPv6 an overlapping one, conflicts. This call's own gateways never conflict with each
 * other (several v4 ranges give several gateways; the reference fails on the second one).
 */
function staleAddrs(before: AddrRecord[], gateways: string[]): { stale: AddrRecord[]; first?: string } {
  const stale = new Map<string, AddrRecord>();
  let first: string | undefined;
  const own = new Set(gateways.map((g) => formatCidr(parseCidr(g))));
  for (const gw of gateways) {
    for (const a of conflictingAddrs(before, gw)) {
      const cidr = formatCidr(parseCidr(addrCidr(a)));
      if (own.has(cidr)) continue;
      stale.set(cidr, a);
      first ??= gw;
    }
  }
  // Removing a primary v4 address removes its secondaries too: remove those first.
  const list = [...stale.values()].sort((a, b) => Number(!!b.secondary) - Number(!!a.secondary));
  return { stale: list, ...(first ? { first } : {}) };
}

/**
 * The dialog's reads and the verdicts on them: the bridge as it is, and when its MTU differs or it has
 * stale addresses, its ports. The reference fails on a stale address unless forceAddress; weft also
 * replaces it when no pod is attached (a node whose subnet changed, complaint 6.2) and logs it. Throws
 * before anything is changed.
 */
async function look(ip: IpDialog, n: BridgeSettings, gateways: string[], log: Logger): Promise<Seen> {
  const [bridges] = await ip.read([bridgesShow()]);
  const br = linkNamed(bridges, n.brName);
  if (!br) return { before: [], stale: [], setMtu: false };
  const before = (br.addr_info ?? []) as AddrRecord[];
  const { stale, first } = staleAddrs(before, gateways);
  const mtuDiffers = n.mtu > 0 && br.mtu !== n.mtu;
  let ports: LinkRecord[] = [];
  if (mtuDiffers || stale.length > 0) {
    ports = ((await ip.read([bridgePortsShow(n.brName)]))[0] ?? []) as LinkRecord[];
  }
  if (stale.length > 0 && !n.forceAddress) {
    const cidrs = stale.map(addrCidr);
    if (ports.length > 0) {
      throw new CniError(
        ErrorCode.Internal,
        `failed to set bridge addr: ${JSON.stringify(n.brName)} already has an IP address different from ${first}`,
        `the bridge still carries ${cidrs.join(", ")} (the node's pod subnet changed?) and ${ports.length} other port(s) are attached: delete the pods of the old subnet, or run \`ip addr flush dev ${n.brName}\` and recreate them, or set "forceAddress": true`,
      );
    }
    log.warn("replacing stale bridge address: no other pod is attached", {
      bridge: n.brName,
      stale: cidrs.join(","),
      gateway: gateways.join(","),
    });
  }
  let setMtu = false;
  if (mtuDiffers) {
    // Beyond the reference, which sets the MTU only at creation: a bridge left with an old MTU makes
    // large transfers hang after FLANNEL_MTU changed (complaint 6.5). Lowered always; raised only while
    // no pod with a smaller MTU is attached, since the bridge drops frames larger than a port's MTU on
    // the way to it. An empty bridge is expected to differ (the kernel gives a bridge 1500 again when
    // its last port goes): only pods attached with another MTU are worth a warning.
    const smaller = ports.filter((p) => p.mtu < n.mtu);
    const others = ports.filter((p) => p.mtu !== n.mtu);
    const fields = {
      bridge: n.brName,
      from: br.mtu,
      to: n.mtu,
      ...(others.length > 0 ? { ports: others.map((p) => `${p.ifname}=${p.mtu}`).join(",") } : {}),
    };
    setMtu = n.mtu < br.mtu || smaller.length === 0;
    if (!setMtu) {
      log.warn(
        "bridge MTU stays below the configured one while pods with a smaller MTU are attached",
        fields,
      );
    } else if (others.length > 0) {
      log.warn(
        "bridge MTU differs from the configured one and pods are attached with another MTU; setting it",
        fields,
      );
    } else {
      log.debug("bridge MTU differs from the configured one; setting it", fields);
    }
  }
  return { br, before, stale, setMtu };
}

interface Plan {
  cmds: IpCommand[];
  /** Indexes of the bridge creation (or -1), the veth creation and the first gateway address. */
  createAt: number;
  vethAt: number;
  gatewayAt: number;
}

function plan(n: BridgeSettings, seen: Seen, pod: PodRef, hostVeth: string, gateways: string[]): Plan {
  const cmds: IpCommand[] = [];
  const name = n.brName;
  const { br } = seen;
  let createAt = -1;
  if (!br) {
    createAt = cmds.length;
    cmds.push(
      bridgeAdd(name, {
        ...(n.mtu ? { mtu: n.mtu } : {}),
        // ensureAddr pins the MAC the bridge had before its first port; giving it one at creation is the same.
        ...(gateways.length > 0 ? { mac: randomMac() } : {}),
        vlanFiltering: n.vlan !== 0 || n.vlans.length > 0,
      }),
    );
  } else if (seen.setMtu) {
    cmds.push(linkSetMtu(name, n.mtu));
  }
  if (n.promiscMode && !(br && isPromisc(br))) cmds.push(linkSetPromisc(name, true));
  cmds.push(linkSetUp(name));
  const vethAt = cmds.length;
  cmds.push(
    vethAdd({
      hostName: hostVeth,
      peerName: pod.ifname,
      peerNetns: pod.netns,
      ...(n.mtu ? { mtu: n.mtu } : {}),
      ...(n.mac ? { peerMac: n.mac } : {}),
    }),
  );
  cmds.push({
    ...linkSetMaster(hostVeth, name, `failed to connect ${JSON.stringify(hostVeth)} to bridge ${name}`),
    line: `${linkSetMaster(hostVeth, name, "").line} up`,
  });
  cmds.push(bridgePortSet(hostVeth, { hairpin: n.hairpinMode, isolated: n.portIsolation }));
  for (const a of seen.stale) {
    cmds.push(
      addrDel(
        addrCidr(a),
        name,
        `failed to set bridge addr: could not remove IP address from ${JSON.stringify(name)}`,
      ),
    );
  }
  const gatewayAt = cmds.length;
  for (const gw of gateways) {
    cmds.push(
      addrReplace(gw, name, `failed to set bridge addr: could not add IP address to ${JSON.stringify(name)}`),
    );
  }
  // Pin the MAC so the bridge stops taking the lowest port MAC as pods come and go.
  if (br && gateways.length > 0 && br.address) {
    cmds.push(linkSetAddress(name, br.address, "failed to set bridge addr: could not set bridge's mac"));
  }
  // The new host veth as ip sees it: the anchor that proves (or not) that /sys is this namespace's.
  cmds.push(linkShow(hostVeth, `failed to look up ${JSON.stringify(hostVeth)}`));
  return { cmds, createAt, vethAt, gatewayAt };
}

/** What to run inside the pod right after the host side (see pod.ts). */
export interface PodPlan {
  cmds: IpCommand[];
  sysctls: SysctlWrite[];
}

export interface Attached {
  hostVeth: string;
  /** The host veth as ip reported it at the end of the host batch. */
  hostLink: LinkRecord | undefined;
  podReads: IpReads;
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
): Promise<Attached> {
  for (let attempt = 0; ; attempt++) {
    const hostVeth = randomVethName();
    let seen: Seen = { before: [], stale: [], setMtu: false };
    let p: Plan | undefined;
    let asked = 0;
    const gatewaysAdded = (appliedBefore: number) =>
      gateways.filter((g, i) => p!.gatewayAt + i < appliedBefore && !hasAddr(seen.before, g));
    state.hostVeth = hostVeth;
    let reads: { host: IpReads; pod: IpReads };
    try {
      // The host batch and the pod's configuration in one process (the pod part runs only if the host
      // part succeeded).
      reads = await ipBatchThenPod(
        async (ip) => {
          const counted: IpDialog = {
            read: (cmds) => {
              asked += cmds.length;
              return ip.read(cmds);
            },
          };
          seen = await look(counted, n, gateways, log);
          p = plan(n, seen, pod, hostVeth, gateways);
          return p.cmds;
        },
        podPlan.cmds,
        { netns: pod.netns, sysctls: podPlan.sysctls, details: true },
      );
    } catch (err) {
      if (!p || !(err instanceof IpBatchError)) {
        state.hostVeth = undefined; // the dialog refused: nothing was created
        throw err;
      }
      if (err.stage === "pod") {
        state.addedGateways = gatewaysAdded(Number.POSITIVE_INFINITY);
        throw new CniError(ErrorCode.Internal, err.message, "", { cause: err });
      }
      // ip died without a command number: count everything as done.
      const at = err.index < 0 ? Number.POSITIVE_INFINITY : err.index - asked;
      state.addedGateways = gatewaysAdded(at);
      if (at <= p.vethAt) state.hostVeth = undefined;
      if (at === p.createAt && /file exists/.test(err.reason) && attempt < 10) {
        const other = await readLink(n.brName);
        if (other && kindOf(other) !== "bridge") {
          throw bridgeError(n.brName, `${JSON.stringify(n.brName)} already exists but is not a bridge`);
        }
        continue; // raced another ADD that created it
      }
      if (at === p.vethAt && /file exists/.test(err.reason) && attempt < 10) {
        if (await replaceStalePodLink(n, pod, log)) continue;
        if (await readLink(hostVeth)) continue; // the random host name was taken: pick another, as the reference
        throw new CniError(ErrorCode.Internal, `container veth name provided (${pod.ifname}) already exists`);
      }
      if (err.index === -1) throw new CniError(ErrorCode.Internal, err.reason, "", { cause: err });
      if (at < p.vethAt) throw bridgeError(n.brName, err.message, { cause: err });
      throw new CniError(ErrorCode.Internal, err.message, "", { cause: err });
    }
    state.addedGateways = gatewaysAdded(Number.POSITIVE_INFINITY);
    if (n.vlan !== 0 || n.vlans.length > 0) {
      try {
        await setPortVlans(hostVeth, {
          vlan: n.vlan,
          trunk: n.vlans,
          removeDefault: n.preserveDefaultVlan ? 0 : defaultPvid(seen.br),
        });
      } catch (err) {
        throw new CniError(ErrorCode.Internal, (err as Error).message, "", { cause: err });
      }
    }
    // /proc/sys/net shows the namespace of the process that reads it: this one, whatever /sys shows.
    trySysctl(`net/ipv6/conf/${n.brName}/accept_ra`, "0");
    trySysctl(`net/ipv6/conf/${hostVeth}/accept_ra`, "0");
    const hostLink = reads.host.at(-1)?.[0] as LinkRecord | undefined;
    return { hostVeth, hostLink, podReads: reads.pod };
  }
}

/**
 * A retried ADD finds CNI_IFNAME in the pod. When it is a veth whose peer is a port of our bridge (what a
 * killed earlier ADD leaves), remove it and report true so the caller tries again.
 */
async function replaceStalePodLink(n: BridgeSettings, pod: PodRef, log: Logger): Promise<boolean> {
  const link = await readLink(pod.ifname, { netns: pod.netns }).catch(() => undefined);
  // A peer in the pod itself has no link_netnsid; its ifindex means nothing on the host.
  if (!link || kindOf(link) !== "veth" || link.link_index === undefined || link.link_netnsid === undefined)
    return false;
  const hostPort = (await readBridgePorts(n.brName)).find((p) => p.ifindex === link.link_index);
  if (!hostPort) return false;
  log.warn("replacing the pod interface left by an earlier ADD", {
    ifname: pod.ifname,
    hostVeth: hostPort.ifname,
  });
  await ipBatch([linkDel(hostPort.ifname)]);
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
