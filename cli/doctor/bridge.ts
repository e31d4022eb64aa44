import type { SubnetEnv } from "../../shared/flannel/subnet-env.js";
import { canonicalIpText, firstHost, formatIp, overlaps, parseCidr } from "../../shared/net/ipaddr.js";
import { kindOf, type LinkRecord } from "../../shared/net/link.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * The bridge (cni0) against subnet.env: its address must be the gateway of FLANNEL_SUBNET, or the next
 * pod fails with `"cni0" already has an IP address different from 10.244.3.1/24` (anchors 6.2: the
 * node's subnet changed and the bridge kept the old gateway; bridge only adds addresses); its MTU must be
 * FLANNEL_MTU (anchors 6.5).
 */

/** The gateway the bridge plugin puts on the bridge for a subnet: its first host, with the prefix. */
export function gatewayOf(subnet: string): string {
  const c = parseCidr(subnet);
  return `${formatIp(firstHost(c))}/${c.prefix}`;
}

export interface BridgeFinding {
  /** Addresses of a family on the bridge that are not the gateway ("10.244.7.1/24"). */
  wrong: string[];
  /** The wanted gateway is missing. */
  missing: string[];
  mtu?: { bridge: number; want: number };
  /** Ports (pod veths) whose MTU exceeds FLANNEL_MTU. */
  bigPorts: string[];
}

/**
 * Compares a bridge with subnet.env. IPv4: any other address fails the plugin (the reference refuses any
 * second IPv4 address); IPv6: only an address overlapping the gateway's subnet does.
 */
export function compareBridge(bridge: LinkRecord, ports: LinkRecord[], env: SubnetEnv): BridgeFinding {
  const f: BridgeFinding = { wrong: [], missing: [], bigPorts: [] };
  const addrs = bridge.addr_info ?? [];
  for (const [fam, subnet] of [
    ["inet", env.subnet],
    ["inet6", env.ipv6Subnet],
  ] as const) {
    if (!subnet) continue;
    const gw = gatewayOf(subnet);
    const gwIp = canonicalIpText(gw.split("/")[0]!);
    const mine = addrs.filter((a) => a.family === fam && !(fam === "inet6" && a.scope === "link"));
    const isGw = (a: { local: string; prefixlen: number }) =>
      canonicalIpText(a.local) === gwIp && a.prefixlen === Number(gw.split("/")[1]);
    if (!mine.some(isGw)) f.missing.push(gw);
    for (const a of mine) {
      if (isGw(a)) continue;
      // IPv6: the reference accepts more addresses as long as their subnets do not overlap.
      if (fam === "inet6" && !overlaps(parseCidr(`${a.local}/${a.prefixlen}`), parseCidr(subnet))) continue;
      f.wrong.push(`${a.local}/${a.prefixlen}`);
    }
  }
  if (env.mtu !== undefined && bridge.mtu !== env.mtu) f.mtu = { bridge: bridge.mtu, want: env.mtu };
  if (env.mtu !== undefined) f.bigPorts = ports.filter((p) => p.mtu > env.mtu!).map((p) => p.ifname);
  return f;
}

export async function bridgeChecks(node: NodeState): Promise<Check[]> {
  const setup = await node.setup();
  if (!setup.ok || !setup.value.flannel) return [skipped("bridge", "no flannel conflist (see conflist)")];
  if (setup.value.delegateType !== "bridge")
    return [skipped("bridge", `flannel delegates to ${setup.value.delegateType}, not bridge`)];
  const name = setup.value.bridge;
  const env = await node.subnetEnv();
  const { links } = await node.kernel();
  const bridge = links.find((l) => l.ifname === name);
  const id = name;
  if (!bridge) return [ok(id, `${name} does not exist yet: the first pod's ADD creates it`)];
  if (kindOf(bridge) !== "bridge")
    return [
      problem(
        id,
        `${name} is a ${kindOf(bridge) ?? "device"}, not a bridge: every pod ADD fails`,
        `ip link del ${name} (the next pod's ADD creates the bridge)`,
      ),
    ];
  if (!env.ok) return [skipped(id, "subnet.env cannot be read (see subnet-env)")];
  const ports = links.filter((l) => l.master === name);
  const f = compareBridge(bridge, ports, env.value);
  const have = (bridge.addr_info ?? [])
    .filter((a) => a.scope !== "link")
    .map((a) => `${a.local}/${a.prefixlen}`)
    .join(", ");
  const podWord = `${ports.length} pod${ports.length === 1 ? "" : "s"} attached`;
  const out: Check[] = [];
  if (f.wrong.length > 0) {
    const gw = f.missing[0] ?? gatewayOf(env.value.subnet ?? env.value.ipv6Subnet!);
    out.push(
      problem(
        `${id}-address`,
        `${name} has ${f.wrong.join(", ")}, not ${gw} of FLANNEL_SUBNET: the next pod fails with "${name}" already has an IP address different from ${gw} (the node's subnet changed and the bridge kept the old gateway)`,
        ports.length === 0
          ? `ip link del ${name} (no pod is attached; the next pod's ADD recreates it with ${gw})`
          : `${podWord} with addresses of the old subnet: drain the node (delete its pods), then ip link del ${name}; the next pod recreates it with ${gw}`,
      ),
    );
  } else if (f.missing.length > 0 && ports.length > 0) {
    out.push(
      problem(
        `${id}-address`,
        `${name} has no gateway address ${f.missing.join(", ")} while ${podWord}: pods have no gateway`,
        `ip addr add ${f.missing[0]} dev ${name}`,
      ),
    );
  } else {
    out.push(ok(`${id}-address`, `${have || "no address yet (added by the next pod)"}, ${podWord}`));
  }
  if (f.mtu || f.bigPorts.length > 0) {
    const want = env.value.mtu!;
    const why = f.mtu
      ? `${name}'s MTU is ${f.mtu.bridge}, FLANNEL_MTU is ${want}`
      : `${name}'s MTU is ${want} as FLANNEL_MTU says`;
    const big = f.bigPorts.length > 0 ? `; pod veths over ${want}: ${f.bigPorts.join(", ")}` : "";
    out.push(
      problem(
        `${id}-mtu`,
        `${why}${big}: packets larger than the overlay carries are dropped (transfers hang) or paths are needlessly small`,
        `ip link set ${name} mtu ${want}${f.bigPorts.length > 0 ? "; pods keep their veth MTU until recreated" : ""} (a bridge takes the smallest MTU of its ports)`,
      ),
    );
  } else {
    out.push(ok(`${id}-mtu`, `${bridge.mtu}, as FLANNEL_MTU`));
  }
  return out;
}
