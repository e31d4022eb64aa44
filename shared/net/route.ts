import { type IpCommand, q } from "./ip.js";

/**
 * Routes: `ip route` lines for a batch and the `ip -j route show` records. The plugins add routes; the
 * daemon replaces, deletes and lists them (by table, protocol and device) to keep them level with its
 * leases.
 */

export interface RouteSpec {
  dst: string;
  gw?: string;
  dev: string;
  metric?: number;
  table?: number;
  scope?: number;
  /** `onlink`: the gateway is reachable on the device even though no address of it covers the gateway. */
  onlink?: boolean;
  /** `proto`: who made the route (a number, or a name from /etc/iproute2/rt_protos such as "boot"). */
  proto?: number | string;
}

export interface RouteRecord {
  dst: string;
  /** With `-details` or a non-unicast route: "unicast", "local", "blackhole"... */
  type?: string;
  gateway?: string;
  dev?: string;
  /** A name from rt_protos ("kernel", "boot", "static") or the number as text ("87"). */
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  /** Absent for the main table. */
  table?: string;
  flags?: string[];
}

const SCOPES: Record<number, string> = { 0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere" };

/** Go's `%v` of the route for the reference's error text. */
export function describeRoute(r: RouteSpec): string {
  return `${r.dst} via ${r.gw ?? "<nil>"} dev ${r.dev} metric ${r.metric ?? 0} (Scope: ${r.scope ?? 0}, Table: ${r.table ?? 0})`;
}

/** The words after `route <verb> <dst>` that name the route: gateway, device, flags, protocol, metric, table. */
function routeWords(r: RouteSpec): string[] {
  const parts: string[] = [];
  if (r.gw) parts.push(`via ${r.gw}`);
  if (r.dev) parts.push(`dev ${q(r.dev)}`);
  if (r.onlink) parts.push("onlink");
  if (r.proto !== undefined) parts.push(`proto ${q(String(r.proto))}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  if (r.table) parts.push(`table ${r.table}`);
  if (r.scope !== undefined && r.scope !== 0) parts.push(`scope ${SCOPES[r.scope] ?? r.scope}`);
  return parts;
}

const viaText = (r: RouteSpec) => `${r.dst}${r.gw ? ` via ${r.gw}` : ""} dev ${r.dev}`;

/**
 * `ip route add` (the reference uses RouteAddEcmp; `append` adds a further nexthop-less duplicate with a
 * different gateway instead of failing, which is what ECMP addition amounts to for single-path routes).
 */
export function routeAdd(r: RouteSpec): IpCommand {
  return {
    line: [`route add ${r.dst}`, ...routeWords(r)].join(" "),
    what: `failed to add route '${describeRoute(r)}'`,
  };
}

/**
 * `ip route replace`: adds the route, or overwrites the one to the same destination (same table, metric
 * and tos) whatever its gateway or device, as flanneld's RouteReplace does.
 */
export function routeReplace(r: RouteSpec, what = `replace route ${viaText(r)}`): IpCommand {
  return { line: [`route replace ${r.dst}`, ...routeWords(r)].join(" "), what };
}

/**
 * `ip route del` naming the route exactly (the kernel matches the gateway, device and protocol given), so
 * it never takes another route to the same destination. A route already gone (ESRCH) is fine.
 */
export function routeDel(r: RouteSpec, what = `delete route ${viaText(r)}`): IpCommand {
  return { line: [`route del ${r.dst}`, ...routeWords(r)].join(" "), what, mayFail: /No such process/ };
}

/**
 * Every route of a family, all tables. Batch lines take no global options such as -6; a v6 `root`
 * selects the family instead. Filter in code (mainTableRoutes, isProto, routesOnDev): ip 6.1 answers
 * `table main root ...` with nothing, `proto N` drops the protocol from the records, and `dev X` for a
 * missing device is an error.
 */
export function routeShow(family: 4 | 6, what = "route table lookup"): IpCommand {
  return { line: family === 4 ? "route show table all" : "route show root ::/0 table all", what, read: true };
}

/** "default" in ip's output is the family's 0/0. */
export function routeDst(r: RouteRecord, family: 4 | 6): string {
  if (r.dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0";
  if (r.dst.includes("/")) return r.dst;
  return `${r.dst}/${family === 4 ? 32 : 128}`;
}

/** The main table's unicast routes of a routeShow read (no local, broadcast, blackhole...). */
export function mainTableRoutes(read: unknown[] | undefined): RouteRecord[] {
  return ((read ?? []) as RouteRecord[]).filter(
    (r) => (r.table === undefined || r.table === "main") && (r.type === undefined || r.type === "unicast"),
  );
}

/** Whether a record carries protocol `proto` (ip prints an unnamed protocol as its number). */
export function isProto(r: RouteRecord, proto: number | string): boolean {
  if (r.protocol === undefined) return false;
  if (typeof proto === "string") return r.protocol === proto;
  return r.protocol === String(proto) || Number(r.protocol) === proto;
}

export function routesOnDev(routes: RouteRecord[], dev: string): RouteRecord[] {
  return routes.filter((r) => r.dev === dev);
}

/** The spec that names exactly this route again (to delete it). */
export function routeSpecOf(r: RouteRecord, family: 4 | 6): RouteSpec {
  const spec: RouteSpec = { dst: routeDst(r, family), dev: r.dev ?? "" };
  if (r.gateway) spec.gw = r.gateway;
  if (r.flags?.includes("onlink")) spec.onlink = true;
  if (r.protocol !== undefined) spec.proto = r.protocol;
  if (r.metric) spec.metric = r.metric;
  return spec;
}
