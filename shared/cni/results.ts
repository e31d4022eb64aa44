import { CniError, ErrorCode } from "./errors.js";
import { goQuote } from "./goquote.js";
import type {
  AnyResult,
  DNS,
  Interface,
  IPConfig,
  IPv020,
  NetConf,
  Result,
  Result020,
  Route,
} from "./types.js";
import { isSupported, resultFamily } from "./versions.js";

/**
 * Results move between spec versions the way the Go `types/{020,040,100}` packages convert them.
 * Internally every result is held in the 1.x layout (no ips[].version); `formatResult` renders a version.
 */

function familyOf(cidrOrIp: string): "4" | "6" {
  const ip = cidrOrIp.split("/")[0] ?? "";
  // Every IPv6 text form has a colon and no IPv4 one does; node:net costs startup time for this alone.
  return ip.includes(":") ? "6" : "4";
}

function dnsOf(dns: unknown): DNS {
  if (!dns || typeof dns !== "object") return {};
  const d = dns as DNS;
  const out: DNS = {};
  if (d.nameservers?.length) out.nameservers = [...d.nameservers];
  if (d.domain) out.domain = d.domain;
  if (d.search?.length) out.search = [...d.search];
  if (d.options?.length) out.options = [...d.options];
  return out;
}

function isEmptyDns(d: DNS): boolean {
  return Object.keys(d).length === 0;
}

function routeOf(r: Route, withV11: boolean): Route {
  const out: Route = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  if (!withV11) return out;
  // Go: mtu/advmss/priority are ints with omitempty, table/scope are *int (0 is a real table/scope).
  for (const k of ["mtu", "advmss", "priority"] as const) if (r[k]) out[k] = r[k];
  for (const k of ["table", "scope"] as const) if (typeof r[k] === "number") out[k] = r[k];
  return out;
}

function interfaceOf(i: Interface, withV11: boolean): Interface {
  const out: Interface = { name: i.name };
  if (i.mac) out.mac = i.mac;
  if (withV11 && i.mtu) out.mtu = i.mtu;
  if (i.sandbox) out.sandbox = i.sandbox;
  if (withV11 && i.socketPath) out.socketPath = i.socketPath;
  if (withV11 && i.pciID) out.pciID = i.pciID;
  return out;
}

function ipOf(ip: IPConfig, withVersion: boolean): IPConfig {
  const out = {} as IPConfig;
  if (withVersion) out.version = familyOf(ip.address);
  if (ip.interface !== undefined && ip.interface !== null) out.interface = ip.interface;
  out.address = ip.address;
  if (ip.gateway) out.gateway = ip.gateway;
  return out;
}

function from020(raw: Result020): Result {
  const ips: IPConfig[] = [];
  const routes: Route[] = [];
  for (const block of [raw.ip4, raw.ip6]) {
    if (!block) continue;
    const ip: IPConfig = { address: block.ip };
    if (block.gateway) ip.gateway = block.gateway;
    ips.push(ip);
    for (const r of block.routes ?? []) routes.push(routeOf(r, false));
  }
  const out: Result = { cniVersion: raw.cniVersion, ips, routes };
  const dns = dnsOf(raw.dns);
  if (!isEmptyDns(dns)) out.dns = dns;
  return out;
}

/**
 * Reads a result document into the internal (1.x) layout. `version` is the version to assume when the
 * document has no cniVersion, as invoke's fixupResultVersion and skel's prevResult parsing do.
 */
export function parseResult(raw: unknown, version: string): Result {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new CniError(ErrorCode.DecodingFailure, "failed to parse result: not a JSON object");
  }
  const doc = { ...(raw as Record<string, unknown>) };
  if (typeof doc.cniVersion !== "string" || doc.cniVersion === "") doc.cniVersion = version;
  // The 0.2.0 type reads an empty version as 0.1.0.
  const v = (doc.cniVersion as string) || "0.1.0";
  doc.cniVersion = v;
  if (!isSupported(v)) {
    throw new CniError(ErrorCode.Internal, `unsupported CNI result version ${goQuote(v)}`);
  }
  if (resultFamily(v) === "020") return from020(doc as unknown as Result020);
  const r = doc as unknown as Result;
  const out: Result = { cniVersion: v };
  if (Array.isArray(r.interfaces)) out.interfaces = r.interfaces.map((i) => interfaceOf(i, true));
  if (Array.isArray(r.ips)) out.ips = r.ips.map((ip) => ipOf(ip, false));
  if (Array.isArray(r.routes)) out.routes = r.routes.map((rt) => routeOf(rt, true));
  const dns = dnsOf(r.dns);
  if (!isEmptyDns(dns)) out.dns = dns;
  return out;
}

function to020(r: Result, version: string): Result020 {
  const out: Result020 = { cniVersion: version };
  for (const fam of ["4", "6"] as const) {
    const ip = (r.ips ?? []).find((i) => familyOf(i.address) === fam);
    if (!ip) continue;
    const block: IPv020 = { ip: ip.address };
    if (ip.gateway) block.gateway = ip.gateway;
    const routes = (r.routes ?? []).filter((rt) => familyOf(rt.dst) === fam).map((rt) => routeOf(rt, false));
    if (routes.length) block.routes = routes;
    if (fam === "4") out.ip4 = block;
    else out.ip6 = block;
  }
  if (!out.ip4 && !out.ip6) {
    throw new CniError(ErrorCode.Internal, "cannot convert: no valid IP addresses");
  }
  // The Go 0.2.0 type marshals dns as a struct, so it is always present.
  out.dns = dnsOf(r.dns);
  return out;
}

/** Go's json.Marshal of a map: keys sorted at every level. */
function sortedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortedKeys) as T;
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) out[k] = sortedKeys((value as Record<string, unknown>)[k]);
  return out as T;
}

/**
 * Renders an internal result in `version`'s layout, with keys in the order the Go types marshal them:
 * struct order up to 0.4.0; for 1.x, cni >= v1.2.0 re-marshals through a map (to drop an empty dns),
 * which sorts the keys at every level.
 */
export function formatResult(r: Result, target: string): AnyResult {
  // Convert() treats an empty target as 0.1.0.
  const version = target || "0.1.0";
  if (!isSupported(version)) {
    throw new CniError(
      ErrorCode.Internal,
      `no converter for CNI result version ${r.cniVersion || "1.1.0"} to ${version}`,
    );
  }
  const fam = resultFamily(version);
  if (fam === "020") return to020(r, version);
  const v11 = fam === "100";
  const out: Result = { cniVersion: version };
  if (r.interfaces?.length) out.interfaces = r.interfaces.map((i) => interfaceOf(i, v11));
  if (r.ips?.length) out.ips = r.ips.map((ip) => ipOf(ip, fam === "040"));
  if (r.routes?.length) out.routes = r.routes.map((rt) => routeOf(rt, true));
  const dns = dnsOf(r.dns);
  // 0.3.x/0.4.0 always carry "dns":{}; 1.x omits it when empty.
  if (fam === "040" || !isEmptyDns(dns)) out.dns = dns;
  return fam === "100" ? sortedKeys(out) : out;
}

/**
 * version.ParsePrevResult: the config's prevResult in the internal layout, read as the config's version
 * when it has none of its own. Undefined when there is no prevResult.
 */
export function parsePrevResult(conf: Pick<NetConf, "cniVersion" | "prevResult">): Result | undefined {
  if (conf.prevResult === undefined || conf.prevResult === null) return undefined;
  try {
    return parseResult(conf.prevResult, conf.cniVersion);
  } catch (err) {
    const e = err as CniError;
    throw new CniError(ErrorCode.Internal, `could not parse prevResult: ${e.msg}`, e.details);
  }
}

/** Converts a result document from its own version to `version`. */
export function convertResult(raw: unknown, version: string, assumedVersion = version): AnyResult {
  return formatResult(parseResult(raw, assumedVersion), version);
}
