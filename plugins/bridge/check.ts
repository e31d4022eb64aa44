import type { CmdArgs } from "../../shared/cni/env.js";
import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { Interface, Result } from "../../shared/cni/types.js";
import { addrShowIfExists, addrsOf } from "../../shared/net/addr.js";
import { batchWordProblem, IpBatchError, type IpReads, ipBatchThenPod } from "../../shared/net/ip.js";
import {
  type Cidr,
  cidrEqual,
  familyOfText,
  ipEqual,
  networkOf,
  parseCidr,
  parseIp,
} from "../../shared/net/ipaddr.js";
import {
  isPromisc,
  kindOf,
  type LinkRecord,
  linkShowIfExists,
  validLinkName,
} from "../../shared/net/link.js";
import { type RouteRecord, routeDst, routeShow } from "../../shared/net/route.js";
import type { BridgeSettings } from "./config.js";
import { checkPodNames } from "./host.js";

/**
 * CHECK against prevResult, as the reference's cmdCheck: the bridge, the container veth and its host peer
 * on the bridge, then the addresses and routes inside the pod. The host links and the pod are read in one
 * process, through ip (the caller's /sys may show another namespace).
 */
const fail = (msg: string, options?: ErrorOptions) => new CniError(ErrorCode.Internal, msg, "", options);

export async function checkPod(n: BridgeSettings, args: CmdArgs, prev: Result): Promise<void> {
  const interfaces = prev.interfaces ?? [];
  const brMap = interfaces.find((i) => i.name === n.brName) ?? { name: "" };
  const contMap = interfaces.find((i) => i.name === args.ifname && i.sandbox === args.netns) ?? { name: "" };

  checkPodNames(args);
  const hostNames = interfaces.filter((i) => i !== contMap).map((i) => i.name);
  const { hostLinks, pod } = await readLinks(args, [brMap.name, ...hostNames]);
  const [contLink, addrs, routes4, routes6] = pod;

  const br = checkBridge(brMap, n, hostLinks.get(brMap.name));
  if (args.netns !== (contMap.sandbox ?? "")) {
    throw fail(
      `Sandbox in prevResult ${contMap.sandbox ?? ""} doesn't match configured netns: ${args.netns}`,
    );
  }

  const cont = checkContainerIface(contMap, contLink);
  checkMtu(args.ifname, cont.mtu, n.mtu);

  let vethFound = false;
  for (const intf of interfaces) {
    if (intf.name === brMap.name || intf.name === contMap.name) continue;
    if (checkHostVeth(intf, hostLinks.get(intf.name), br.name, cont, n.mtu)) {
      vethFound = true;
      break;
    }
  }
  if (!vethFound) throw fail(`CNI veth created for bridge ${n.brName} was not found`);

  // ValidateExpectedInterfaceIPs
  const main = (r: RouteRecord) => r.table === undefined || r.table === "main";
  const routesOf = (f: 4 | 6) => (f === 4 ? routes4 : routes6).filter(main);
  for (const ip of prev.ips ?? []) {
    const want = parseCidr(ip.address);
    const family = want.ip.family;
    if (!addrs.some((a) => cidrEqual({ ip: parseIp(a.local), prefix: a.prefixlen }, want))) {
      throw fail(`Failed to match addr ${ip.address} on interface ${args.ifname}`);
    }
    const prefix = networkOf(want);
    if (!routesOf(family).some((r) => sameNet(routeDst(r, family), prefix))) {
      throw fail(`Failed to find Gateway ${ip.gateway ?? "<nil>"} for interface ${args.ifname}`);
    }
  }
  // ValidateExpectedRoute: a default route is looked up by its absent destination alone.
  for (const r of prev.routes ?? []) {
    const family = familyOfText(r.dst);
    const dst = parseCidr(r.dst);
    const isDefault = dst.prefix === 0;
    const found = routesOf(family).some((k) => {
      if (isDefault) return k.dst === "default";
      if (!sameNet(routeDst(k, family), networkOf(dst))) return false;
      return !r.gw || (k.gateway !== undefined && ipEqual(parseIp(k.gateway), parseIp(r.gw)));
    });
    if (!found) throw fail(`Expected Route {Dst:${r.dst} GW:${r.gw ?? "<nil>"}} not found in routing table`);
  }
}

/** Whether a kernel route's destination (`ip`'s text, host bits cleared) is the network `b`. */
function sameNet(a: string, b: Cidr): boolean {
  return cidrEqual(parseCidr(a), b);
}

function checkBridge(intf: Interface, n: BridgeSettings, link: LinkRecord | undefined): { name: string } {
  if (intf.name === "") throw fail("Interface name missing ");
  if (!link) throw fail(`Interface name ${intf.name} not found`);
  if (intf.sandbox) throw fail(`Interface ${intf.name} should not be in sandbox`);
  if (kindOf(link) !== "bridge") throw fail(`Interface ${intf.name} does not have link type of bridge`);
  if (intf.mac && intf.mac !== link.address)
    throw fail(`Bridge interface ${intf.name} Mac doesn't match: ${intf.mac}`);
  if (isPromisc(link) !== n.promiscMode) {
    throw fail(
      `Bridge interface ${intf.name} configured Promisc Mode ${n.promiscMode} doesn't match current state: ${isPromisc(link)} `,
    );
  }
  return { name: link.ifname };
}

type PodView = [LinkRecord | undefined, ReturnType<typeof addrsOf>, RouteRecord[], RouteRecord[]];

/**
 * The named host links (a name ip cannot carry, or no link name at all, reads as not found) and the pod's
 * interface, addresses and routes, in one process. Missing links are answers, not failures.
 */
async function readLinks(
  args: CmdArgs,
  names: string[],
): Promise<{ hostLinks: Map<string, LinkRecord>; pod: PodView }> {
  const wanted = [...new Set(names)].filter((n) => validLinkName(n) && !batchWordProblem(n));
  // `addr show` carries the link's fields too (kind, peer index, MAC), so no separate `link show`.
  const podCmds = [addrShowIfExists(args.ifname), routeShow(4), routeShow(6)];
  let host: IpReads = [];
  let pod: IpReads = [];
  try {
    ({ host, pod } = await ipBatchThenPod(wanted.map(linkShowIfExists), podCmds, {
      netns: args.netns,
      details: true,
      podDetails: true,
      podAfterHostFailure: true,
    }));
  } catch (err) {
    // A pod that cannot be read shows nothing, as the reference's failed netns lookups do.
    if (!(err instanceof IpBatchError && err.stage === "pod"))
      throw fail((err as Error).message, { cause: err });
    host = err.hostReads;
  }
  const hostLinks = new Map<string, LinkRecord>();
  wanted.forEach((name, i) => {
    const l = host[i]?.[0] as LinkRecord | undefined;
    if (l) hostLinks.set(name, l);
  });
  return {
    hostLinks,
    pod: [
      pod[0]?.[0] as LinkRecord | undefined,
      addrsOf(pod[0]),
      (pod[1] ?? []) as RouteRecord[],
      (pod[2] ?? []) as RouteRecord[],
    ],
  };
}

function checkContainerIface(
  intf: Interface,
  link: LinkRecord | undefined,
): { ifindex: number; peer: number; mtu: number } {
  if (intf.name === "") throw fail("Interface name missing ");
  if (!link) throw fail(`Interface name ${intf.name} not found`);
  if (!intf.sandbox) throw fail(`Interface ${intf.name} is expected to be in a sandbox`);
  if (kindOf(link) !== "veth") throw fail(`Error: Container interface ${link.ifname} not of type veth`);
  if (intf.mac && intf.mac !== link.address) {
    throw fail(`Interface ${intf.name} Mac ${intf.mac} doesn't match container Mac: ${link.address}`);
  }
  return { ifindex: link.ifindex, peer: link.link_index ?? -1, mtu: link.mtu };
}

/**
 * Beyond the reference (its CHECK ignores the MTU): a configured `mtu` must still be on both veth ends,
 * since a pod whose MTU drifted hangs on large transfers (anchors, complaint 5).
 */
function checkMtu(ifname: string, actual: number, configured: number): void {
  if (configured > 0 && actual !== configured)
    throw fail(`Interface ${ifname} MTU ${actual} doesn't match configured MTU ${configured}`);
}

/** validateCniVethInterface: true when `intf` is the container's peer and a port of the bridge. */
function checkHostVeth(
  intf: Interface,
  link: LinkRecord | undefined,
  bridge: string,
  cont: { ifindex: number; peer: number },
  mtu: number,
): boolean {
  if (intf.name === "") throw fail("Interface name missing ");
  if (!link) throw fail(`Interface name ${intf.name} not found`);
  if (intf.sandbox) throw fail(`Interface ${intf.name} should not be in sandbox`);
  if (kindOf(link) !== "veth") return false; // not a veth: not ours, skip it
  if (link.ifindex !== cont.peer || link.link_index !== cont.ifindex) return false;
  if (link.master !== bridge) return false;
  if (intf.mac && intf.mac !== link.address)
    throw fail(`Interface ${intf.name} Mac doesn't match: ${intf.mac} not found`);
  checkMtu(intf.name, link.mtu, mtu);
  return true;
}
