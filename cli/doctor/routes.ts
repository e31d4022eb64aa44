import { WEFT_ROUTE_PROTO } from "../../daemon/backend/backend.js";
import { type Family, familyView, vtepOf } from "../../daemon/backend/common.js";
import { deviceName } from "../../daemon/backend/vxlan.js";
import type { Lease } from "../../daemon/lease.js";
import { bridgeBatch } from "../../shared/net/bridge-batch.js";
import { fdbRemotes, fdbReplace, fdbShow } from "../../shared/net/fdb.js";
import { canonicalCidrText, canonicalIpText } from "../../shared/net/ipaddr.js";
import { kindOf, type LinkRecord } from "../../shared/net/link.js";
import { normalizeMac } from "../../shared/net/mac.js";
import { isPermanent, type NeighRecord, neighReplace, neighsOn } from "../../shared/net/neigh.js";
import { mainTableRoutes, type RouteRecord, routeDst, routeReplace } from "../../shared/net/route.js";
import { vxlanInfo } from "../../shared/net/vxlan.js";
import { ownLease } from "./lease.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * The overlay toward every other node, from the leases in the store: a route to each remote subnet
 * (host-gw: via the node's public IP; vxlan: via `<subnet>.0` onlink on flannel.<VNI>, or via the public
 * IP with DirectRouting), and for vxlan the device itself with, per remote lease, the permanent neighbour
 * `<subnet>.0 lladdr <VtepMAC>` and the fdb entry `<VtepMAC> dst <public IP>` (daemon/backend/vxlan.ts).
 */

const subnetIp = (cidr: string) => canonicalIpText(cidr.split("/")[0]!);
const WHILE_RUNNING =
  "weftd puts it back within about 100 ms while it runs: is weftd running (see weftd)? By hand:";

export interface RemoteRoute {
  subnet: string;
  publicIp: string;
  backend: string;
  /** The VTEP MAC of a vxlan lease. */
  mac?: string;
}

/** Whether a kernel route carries traffic for `r` the way a backend programs it. */
export function routeServes(route: RouteRecord, r: RemoteRoute, f: Family, vtep: string): boolean {
  if (canonicalCidrText(routeDst(route, f)) !== canonicalCidrText(r.subnet)) return false;
  const gw = route.gateway ? canonicalIpText(route.gateway) : undefined;
  if (gw === canonicalIpText(r.publicIp)) return true;
  return r.backend === "vxlan" && route.dev === vtep && gw === subnetIp(r.subnet);
}

/** The remote leases of a family (every lease but this node's), as routes to check. */
export function remoteRoutes(
  leases: Lease[],
  own: Lease | undefined,
  f: Family,
  ownSubnet?: string,
): RemoteRoute[] {
  const out: RemoteRoute[] = [];
  for (const l of leases) {
    if (own && l === own) continue;
    const v = familyView(l, f);
    if (!v || (ownSubnet && v.subnet === canonicalCidrText(ownSubnet))) continue;
    const r: RemoteRoute = { subnet: v.subnet, publicIp: v.publicIp, backend: l.attrs.BackendType ?? "" };
    const mac = vtepOf(l.attrs, f)?.mac;
    if (mac) r.mac = mac;
    out.push(r);
  }
  return out.sort((a, b) => (a.subnet < b.subnet ? -1 : a.subnet > b.subnet ? 1 : 0));
}

function routeCheck(r: RemoteRoute, routes: RouteRecord[], f: Family, vtep: string, backend: string): Check {
  const id = `route:${r.subnet}`;
  const who = `node ${r.publicIp}'s pods (${r.subnet}, ${r.backend || "no backend"})`;
  if (r.backend !== backend)
    return problem(
      id,
      `${who}: that lease's backend is ${r.backend || "none"}, this node's ${backend}; weftd routes only to leases of its own backend`,
      `run every node with the same Backend.Type in net-conf.json`,
    );
  const found = routes.filter((x) => canonicalCidrText(routeDst(x, f)) === canonicalCidrText(r.subnet));
  if (found.some((x) => routeServes(x, r, f, vtep)))
    return ok(id, `to ${who} via ${found[0]!.gateway ?? "?"} dev ${found[0]!.dev ?? "?"}`);
  const spec =
    backend === "vxlan"
      ? { dst: r.subnet, gw: subnetIp(r.subnet), dev: vtep, onlink: true, proto: WEFT_ROUTE_PROTO }
      : { dst: r.subnet, gw: r.publicIp, dev: "", proto: WEFT_ROUTE_PROTO };
  const wrong = found[0];
  return problem(
    id,
    wrong
      ? `the route to ${who} goes via ${wrong.gateway ?? "no gateway"} dev ${wrong.dev ?? "?"}: traffic to those pods goes astray`
      : `no route to ${who}: pods here cannot reach them`,
    `${WHILE_RUNNING} ip ${routeReplace(spec).line}`,
  );
}

function deviceCheck(
  name: string,
  link: LinkRecord | undefined,
  own: Lease,
  f: Family,
  mtu: number | undefined,
): Check {
  const id = `vxlan-device${f === 6 ? "6" : ""}`;
  const fix = `weftd recreates ${name} with the MAC its lease advertises within about 100 ms while it runs: is weftd running (see weftd)?`;
  if (!link) return problem(id, `${name} is missing: no traffic reaches the other nodes`, fix);
  if (kindOf(link) !== "vxlan")
    return problem(id, `${name} is a ${kindOf(link) ?? "device"}, not vxlan`, `ip link del ${name}; ${fix}`);
  const issues: string[] = [];
  const want = vtepOf(own.attrs, f)?.mac;
  const mac = normalizeMac(link.address ?? "");
  if (want && mac !== want)
    issues.push(
      `its MAC is ${link.address}, the lease advertises ${want} (the other nodes' fdb entries name that one)`,
    );
  const local = vxlanInfo(link)?.local;
  const publicIp = f === 4 ? own.attrs.PublicIP : own.attrs.PublicIPv6;
  if (publicIp && local !== canonicalIpText(publicIp))
    issues.push(`its local address is ${local ?? "unset"}, not the lease's public IP ${publicIp}`);
  if (!link.flags?.includes("UP")) issues.push("it is down");
  if (mtu !== undefined && link.mtu < mtu)
    issues.push(`its MTU ${link.mtu} is below FLANNEL_MTU ${mtu} (pods send packets it cannot carry)`);
  if (issues.length > 0) return problem(id, `${name}: ${issues.join("; ")}`, fix);
  return ok(id, `${name} up, MAC ${mac}, local ${local}, MTU ${link.mtu}`);
}

function neighCheck(r: RemoteRoute, dev: string, neighs: NeighRecord[]): Check {
  const id = `vxlan-neigh:${r.subnet}`;
  const ip = subnetIp(r.subnet);
  const e = neighsOn(neighs, dev).find((n) => canonicalIpText(n.dst) === ip);
  if (e && normalizeMac(e.lladdr ?? "") === r.mac && isPermanent(e))
    return ok(id, `${ip} lladdr ${r.mac} on ${dev} (node ${r.publicIp})`);
  return problem(
    id,
    e
      ? `the neighbour ${ip} on ${dev} is ${e.lladdr ?? "without address"} (${(e.state ?? []).join(",")}), not permanent ${r.mac}: node ${r.publicIp}'s pods are unreachable`
      : `no neighbour ${ip} lladdr ${r.mac} on ${dev}: node ${r.publicIp}'s pods are unreachable (the VTEP cannot resolve the next hop)`,
    `${WHILE_RUNNING} ip ${neighReplace({ ip, mac: r.mac!, dev }).line}`,
  );
}

function fdbCheck(r: RemoteRoute, dev: string, fdb: ReturnType<typeof fdbRemotes>): Check {
  const id = `vxlan-fdb:${r.subnet}`;
  const e = fdb.find((x) => x.mac === r.mac && canonicalIpText(x.dst) === canonicalIpText(r.publicIp));
  if (e) return ok(id, `${r.mac} dst ${r.publicIp} on ${dev}`);
  return problem(
    id,
    `no fdb entry ${r.mac} dst ${r.publicIp} on ${dev}: packets for node ${r.publicIp}'s pods are not sent to it`,
    `${WHILE_RUNNING} bridge ${fdbReplace({ mac: r.mac!, dev, dst: r.publicIp }).line}`,
  );
}

export async function routeChecks(node: NodeState): Promise<Check[]> {
  const store = await node.store();
  if (!store?.ok)
    return [skipped("routes", "the store cannot be read (see store): the other nodes are unknown")];
  const leases = store.value.leases;
  const own = ownLease(leases, await node.addresses());
  const env = await node.subnetEnv();
  if (!own) return [skipped("routes", "this node holds no lease (see lease)")];
  const backend = own.attrs.BackendType ?? "";
  const { links, routes, neighs } = await node.kernel();
  const out: Check[] = [];
  for (const f of [4, 6] as const) {
    const ownSubnet = f === 4 ? own.subnet : own.ipv6Subnet;
    if (!ownSubnet) continue;
    const vni = vtepOf(own.attrs, f)?.vni ?? 1;
    const vtep = deviceName(f, vni);
    const remotes = remoteRoutes(leases, own, f, ownSubnet);
    if (backend === "vxlan") {
      const mtu = env.ok ? env.value.mtu : undefined;
      out.push(
        deviceCheck(
          vtep,
          links.find((l) => l.ifname === vtep),
          own,
          f,
          mtu,
        ),
      );
    }
    if (remotes.length === 0) {
      out.push(ok(`routes${f === 6 ? "6" : ""}`, "no other node holds a lease"));
      continue;
    }
    const main = mainTableRoutes(routes[f]);
    for (const r of remotes) out.push(routeCheck(r, main, f, vtep, backend));
    if (backend !== "vxlan") continue;
    const vx = remotes.filter((r) => r.backend === "vxlan" && r.mac);
    if (vx.length === 0) continue;
    const [fdbRead] = await bridgeBatch([fdbShow(vtep)]).catch(() => [undefined]);
    const fdb = fdbRemotes(fdbRead);
    const direct = (r: RemoteRoute) =>
      main.some(
        (x) =>
          canonicalCidrText(routeDst(x, f)) === r.subnet &&
          x.gateway !== undefined &&
          canonicalIpText(x.gateway) === r.publicIp,
      );
    for (const r of vx) {
      // A DirectRouting peer is reached by a plain route via its public IP: no neighbour, no fdb entry.
      if (direct(r)) continue;
      out.push(neighCheck(r, vtep, neighs), fdbCheck(r, vtep, fdb));
    }
  }
  return out;
}
