import { type IpCommand, q } from "./ip.js";

/** Routes: `ip route` lines for a batch and the `ip -j route show` records. */

export interface RouteSpec {
  dst: string;
  gw?: string;
  dev: string;
  metric?: number;
  table?: number;
  scope?: number;
}

export interface RouteRecord {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  table?: string;
}

const SCOPES: Record<number, string> = { 0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere" };

/** Go's `%v` of the route for the reference's error text. */
export function describeRoute(r: RouteSpec): string {
  return `${r.dst} via ${r.gw ?? "<nil>"} dev ${r.dev} metric ${r.metric ?? 0} (Scope: ${r.scope ?? 0}, Table: ${r.table ?? 0})`;
}

/**
 * `ip route add` (the reference uses RouteAddEcmp; `append` adds a further nexthop-less duplicate with a
 * different gateway instead of failing, which is what ECMP addition amounts to for single-path routes).
 */
export function routeAdd(r: RouteSpec): IpCommand {
  const parts = [`route add ${r.dst}`];
  if (r.gw) parts.push(`via ${r.gw}`);
  parts.push(`dev ${q(r.dev)}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  if (r.table) parts.push(`table ${r.table}`);
  if (r.scope !== undefined && r.scope !== 0) parts.push(`scope ${SCOPES[r.scope] ?? r.scope}`);
  return { line: parts.join(" "), what: `failed to add route '${describeRoute(r)}'` };
}

export function routeShow(family: 4 | 6, what = "route table lookup"): IpCommand {
  // Batch lines take no global options such as -6; a v6 `root` selects the family instead.
  return { line: family === 4 ? "route show table all" : "route show root ::/0 table all", what, read: true };
}

/** "default" in ip's output is the family's 0/0. */
export function routeDst(r: RouteRecord, family: 4 | 6): string {
  if (r.dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0";
  if (r.dst.includes("/")) return r.dst;
  return `${r.dst}/${family === 4 ? 32 : 128}`;
}
