import { readFileSync } from "node:fs";
import { canonicalIpText } from "../../shared/net/ipaddr.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem } from "./report.js";

/**
 * kube-proxy's ipvs trap (the seed's section 5.2): in ipvs mode kube-proxy puts every cluster IP on the
 * dummy device kube-ipvs0, so the kernel adds a `local` route for it in table local, and IPVS answers
 * for it. When ipvs is no longer in use (kube-proxy switched to iptables mode, or its ipvs rules gone),
 * the addresses and their local routes stay: traffic to those cluster IPs (the API server's 10.96.0.1
 * first: flanneld then dies with "dial tcp 10.96.0.1:443: i/o timeout") is delivered to this node
 * itself and goes nowhere. Detectable from the node alone: an address on kube-ipvs0 for which
 * /proc/net/ip_vs (per network namespace) lists no virtual service.
 */

export const IPVS_DEVICE = "kube-ipvs0";

/**
 * The addresses of the virtual services in /proc/net/ip_vs (`TCP  0A600001:01BB rr`, v6 as
 * `[2001:0db8:...]:01BB`); firewall-mark services name no address and are left out.
 */
export function ipvsServiceAddresses(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^(?:TCP|UDP|SCTP)\s+(\S+)/.exec(line);
    if (!m) continue;
    const at = m[1]!;
    const v6 = /^\[([0-9a-fA-F:]+)\]:[0-9A-Fa-f]+$/.exec(at);
    if (v6) {
      out.add(canonicalIpText(v6[1]!));
      continue;
    }
    const v4 = /^([0-9A-Fa-f]{8}):[0-9A-Fa-f]+$/.exec(at);
    if (!v4) continue;
    const n = Number.parseInt(v4[1]!, 16);
    out.add([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join("."));
  }
  return out;
}

/** /proc/net/ip_vs of this network namespace, or undefined when IPVS is not loaded. */
function readIpvs(): string | undefined {
  try {
    return readFileSync("/proc/net/ip_vs", "utf8");
  } catch {
    return undefined;
  }
}

export async function ipvsChecks(
  node: NodeState,
  ipvsText: string | undefined = readIpvs(),
): Promise<Check[]> {
  const id = IPVS_DEVICE;
  const { links, routes } = await node.kernel();
  const dev = links.find((l) => l.ifname === IPVS_DEVICE);
  if (!dev) return [ok(id, `no ${IPVS_DEVICE}: kube-proxy's ipvs trap cannot happen here`)];
  const addrs = (dev.addr_info ?? []).filter((a) => a.scope !== "link").map((a) => canonicalIpText(a.local));
  const local = [...routes[4], ...routes[6]].filter((r) => r.type === "local" && r.dev === IPVS_DEVICE);
  if (addrs.length === 0 && local.length === 0) return [ok(id, `${IPVS_DEVICE} holds no address`)];
  const services = ipvsText === undefined ? new Set<string>() : ipvsServiceAddresses(ipvsText);
  const trapped = addrs.filter((a) => !services.has(a));
  if (trapped.length === 0)
    return [ok(id, `every address on ${IPVS_DEVICE} has an IPVS virtual service (kube-proxy in ipvs mode)`)];
  const shown =
    trapped.slice(0, 5).join(", ") + (trapped.length > 5 ? ` and ${trapped.length - 5} more` : "");
  const why =
    ipvsText === undefined
      ? "IPVS is not loaded in this kernel/namespace"
      : "IPVS has no virtual service for them (kube-proxy not in ipvs mode, or its rules gone)";
  return [
    problem(
      id,
      `${IPVS_DEVICE} holds ${shown} with local routes in table local, but ${why}: this node delivers traffic for these cluster IPs to itself, so connections to them (the API server's first) time out`,
      `kube-proxy left ipvs mode behind: run kube-proxy --cleanup (or ip link del ${IPVS_DEVICE}), then restart kube-proxy in the mode it is configured for; deleting the local route alone (ip route del table local local ${trapped[0]} dev ${IPVS_DEVICE}) lasts until the address is set again`,
    ),
  ];
}
