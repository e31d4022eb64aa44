import type { Logger } from "../../shared/log.js";
import type { IpCommand } from "../../shared/net/ip.js";
import { canonicalCidrText, canonicalIpText } from "../../shared/net/ipaddr.js";
import { normalizeMac } from "../../shared/net/mac.js";
import { isProto, type RouteRecord, type RouteSpec, routeDst } from "../../shared/net/route.js";
import type { Lease, LeaseAttrs } from "../lease.js";
import { WEFT_ROUTE_PROTO } from "./backend.js";

/**
 * What the backends share (flannel's pkg/backend/common.go and route_network.go in spirit): options,
 * the per-family view of a lease, the diff of routes against the leases, and the lease log lines.
 */

export interface BackendOptions {
  /** Program this network namespace instead of the daemon's own (tests; the daemon runs in its node's). */
  netns?: string;
}

export type Family = 4 | 6;

// Matches no message: a command marked with it still counts as failed, but its presence makes ip run the
// batch with -force, so a failure for one lease does not keep the others from being programmed.
const NOTHING = /(?!)/;

/** The commands with every one attempted (ip -force); the first failure is still reported. */
export function attemptAll(cmds: IpCommand[]): IpCommand[] {
  return cmds.map((c) => (c.mayFail ? c : { ...c, mayFail: NOTHING }));
}

/** A remote lease as one family sees it. */
export interface RemoteView {
  lease: Lease;
  subnet: string;
  publicIp: string;
}

/** The lease's subnet and public IP of a family, canonical, or undefined when it has none. */
export function familyView(lease: Lease, f: Family): RemoteView | undefined {
  const subnet = f === 4 ? lease.subnet : lease.ipv6Subnet;
  const publicIp = f === 4 ? lease.attrs.PublicIP : lease.attrs.PublicIPv6;
  if (!subnet || !publicIp) return undefined;
  try {
    return { lease, subnet: canonicalCidrText(subnet), publicIp: canonicalIpText(publicIp) };
  } catch {
    return undefined;
  }
}

/** The remote leases a backend acts on: its own type, not the node's own subnet (flanneld's filters). */
export function remotesOf(type: string, own: Lease, remotes: Lease[]): Lease[] {
  return remotes.filter(
    (l) =>
      l.attrs.BackendType === type &&
      !(l.subnet && l.subnet === own.subnet) &&
      !(l.ipv6Subnet && l.ipv6Subnet === own.ipv6Subnet),
  );
}

/** vxlan's backend data of a family (`{"VNI":1,"VtepMAC":"..."}`), as object or JSON text. */
export function vtepOf(attrs: LeaseAttrs, f: Family): { vni?: number; mac: string } | undefined {
  let data = f === 4 ? attrs.BackendData : attrs.BackendV6Data;
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  if (!data || typeof data !== "object") return undefined;
  const d = data as { VNI?: unknown; VtepMAC?: unknown };
  const mac = typeof d.VtepMAC === "string" ? normalizeMac(d.VtepMAC) : undefined;
  if (!mac) return undefined;
  return typeof d.VNI === "number" ? { vni: d.VNI, mac } : { mac };
}

const defaultMetric = (r: RouteRecord, f: Family) => !r.metric || (f === 6 && r.metric === 1024);

function sameGateway(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return a === b;
  return canonicalIpText(a) === canonicalIpText(b);
}

/** Whether a kernel route is exactly the wanted one (destination, gateway, device, onlink, protocol). */
export function routeMatches(r: RouteRecord, want: RouteSpec, f: Family): boolean {
  return (
    canonicalCidrText(routeDst(r, f)) === canonicalCidrText(want.dst) &&
    sameGateway(r.gateway, want.gw) &&
    r.dev === want.dev &&
    (r.flags?.includes("onlink") ?? false) === (want.onlink ?? false) &&
    isProto(r, WEFT_ROUTE_PROTO) &&
    defaultMetric(r, f)
  );
}

export interface RoutePlan {
  /** Routes of ours no lease backs. */
  stale: RouteRecord[];
  /** Wanted routes not in the kernel as wanted, with the route they overwrite (same destination), if any. */
  replace: Array<{ want: RouteSpec; was?: RouteRecord }>;
}

/**
 * The difference between the main table's routes of a family and the wanted ones. `ours` says which
 * kernel routes the backend answers for (proto 87, routes on its own device): those no wanted route
 * backs are stale, unless a wanted route to the same destination will overwrite them anyway (`route
 * replace` takes the slot of the same destination and metric, whoever made it, as flanneld's does).
 */
export function planRoutes(
  existing: RouteRecord[],
  wanted: RouteSpec[],
  f: Family,
  ours: (r: RouteRecord) => boolean,
): RoutePlan {
  const satisfied = new Set<number>();
  const stale: RouteRecord[] = [];
  const slot = new Map<string, RouteRecord>();
  const wantedDsts = new Set(wanted.map((w) => canonicalCidrText(w.dst)));
  for (const r of existing) {
    const i = wanted.findIndex((w, j) => !satisfied.has(j) && routeMatches(r, w, f));
    if (i >= 0) {
      satisfied.add(i);
      continue;
    }
    const dst = canonicalCidrText(routeDst(r, f));
    if (wantedDsts.has(dst) && defaultMetric(r, f)) {
      slot.set(dst, r);
      continue;
    }
    if (ours(r)) stale.push(r);
  }
  const replace = wanted
    .filter((_, i) => !satisfied.has(i))
    .map((want) => {
      const was = slot.get(canonicalCidrText(want.dst));
      return was ? { want, was } : { want };
    });
  return { stale, replace };
}

const describe = (r: RouteRecord | RouteSpec) => {
  const rec = r as RouteRecord & RouteSpec;
  const gw = rec.gateway ?? rec.gw;
  // ip leaves out "boot", the protocol of routes added by hand, unless asked for details.
  const proto = "proto" in rec || isProto(rec, WEFT_ROUTE_PROTO) ? "" : ` proto ${rec.protocol ?? "boot"}`;
  return `${rec.dst}${gw ? ` via ${gw}` : ""}${rec.dev ? ` dev ${rec.dev}` : ""}${proto}`;
};

/**
 * The leases a backend has programmed, so kernel repairs of a known lease are logged as repairs. The
 * lease events themselves ("Subnet added: <subnet> via <public IP>", "Subnet removed: <subnet>", in
 * flanneld's words) are the daemon's lines (daemon.ts), one per event whatever the backend.
 */
export class LeaseLog {
  private known = new Map<string, string>();

  constructor(private readonly log: () => Logger) {}

  /** The public IPs of the leases the last update removed, by subnet. */
  removed = new Map<string, string>();

  /** Remembers the set; returns the subnets that were known before. */
  update(views: RemoteView[]): Set<string> {
    const before = new Set(this.known.keys());
    this.removed = new Map([...this.known].filter(([subnet]) => !views.some((v) => v.subnet === subnet)));
    this.known = new Map(views.map((v) => [v.subnet, v.publicIp]));
    return before;
  }

  /** Logs what a route plan repairs for leases that were already known. */
  repairs(plan: RoutePlan, knownBefore: Set<string>): void {
    for (const r of plan.stale) {
      // A route of a lease that just went is expected to go ("Subnet removed" said so).
      if (
        r.dev !== undefined &&
        knownBefore.has(canonicalCidrText(r.dst)) &&
        !this.known.has(canonicalCidrText(r.dst))
      )
        continue;
      this.log().info(`Removing stale route ${describe(r)} (no lease backs it)`);
    }
    for (const { want, was } of plan.replace) {
      if (!knownBefore.has(canonicalCidrText(want.dst))) continue;
      if (was) this.log().warn(`Replacing existing route to ${describe(was)} with ${describe(want)}`);
      else this.log().info(`Route recovered ${want.dst} : ${want.gw ?? ""}`);
    }
  }
}

/**
 * Runs calls one after the other: a reconcile reads the kernel, then writes what it found missing, so
 * two at once (a lease event during the periodic one) would both create the same device.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
