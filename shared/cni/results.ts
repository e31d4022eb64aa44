import { familyOfText, tryParseCidr, tryParseIp } from "../net/ipaddr.js";
import { CniError, ErrorCode } from "./errors.js";
import { goDecode } from "./go-decode.js";
import { goQuote } from "./goquote.js";
import { type JsonNode, nodeOf } from "./json-scan.js";
import { dnsSchema, type JsonSchema, routeSchema } from "./schemas.js";
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

/** The 0.x `version` of an address: "4" or "6". */
function familyOf(cidrOrIp: string): "4" | "6" {
  return familyOfText(cidrOrIp) === 6 ? "6" : "4";
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
  // Go's Interface.Name has no omitempty: a result always names its interfaces, "" if need be.
  const out: Interface = { name: i.name ?? "" };
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

const str = { type: "string" };
const int = { type: "integer" };
const ipNet = { type: "string", title: "types.IPNet" };
const netIp = { type: "string", title: "net.IP" };
const routes = { type: "array", items: { ...routeSchema, type: ["object", "null"] } };

/**
 * The result types a result document decodes into (Go: types040 / types100, and types020 for 0.1.0 and
 * 0.2.0), with Go's key matching (go-decode.ts). Entries of the lists are pointers, so a null entry
 * stays null and is refused by name afterwards.
 */
const resultSchema: JsonSchema = {
  type: "object",
  properties: {
    cniVersion: str,
    interfaces: {
      type: "array",
      items: {
        type: ["object", "null"],
        title: "Interface",
        properties: { name: str, mac: str, mtu: int, sandbox: str, socketPath: str, pciID: str },
      },
    },
    ips: {
      type: "array",
      items: {
        type: ["object", "null"],
        title: "IPConfig",
        properties: {
          interface: { type: ["integer", "null"] },
          version: str,
          address: ipNet,
          gateway: netIp,
        },
      },
    },
    routes,
    dns: dnsSchema,
  },
};

const ipConfig020 = {
  type: ["object", "null"],
  title: "types020.IPConfig",
  properties: { ip: ipNet, gateway: netIp, routes },
};
const result020Schema: JsonSchema = {
  type: "object",
  properties: { cniVersion: str, ip4: ipConfig020, ip6: ipConfig020, dns: dnsSchema },
};

const decodeFailure = (msg: string, cause?: unknown) =>
  new CniError(ErrorCode.DecodingFailure, msg, "", cause === undefined ? undefined : { cause });

/** net.IPNet / net.IP fields are decoded by ParseCIDR / ParseIP, whose errors Go reports as these. */
function checkCidr(value: unknown, field: string): void {
  if (typeof value === "string" && !tryParseCidr(value)) {
    throw decodeFailure(`${field}: invalid CIDR address: ${value}`);
  }
}
function checkIp(value: unknown, field: string): void {
  if (typeof value === "string" && value !== "" && !tryParseIp(value)) {
    throw decodeFailure(`${field}: invalid IP address: ${value}`);
  }
}

function checkRoutes(list: Array<Route | null> | undefined, field: string): void {
  list?.forEach((r, i) => {
    if (r === null) throw decodeFailure(`${field}[${i}] is null`);
    if (typeof r.dst !== "string") throw decodeFailure(`${field}[${i}].dst is missing`);
    checkCidr(r.dst, `${field}[${i}].dst`);
    checkIp(r.gw, `${field}[${i}].gw`);
  });
}

/**
 * What Go's decode of the result refuses beyond JSON types: null list entries (nil pointers the
 * reference would dereference), and addresses ParseCIDR / ParseIP refuse. Messages name the field.
 */
function checkResult(r: Result): void {
  (r.interfaces as Array<Interface | null> | undefined)?.forEach((intf, i) => {
    if (intf === null) throw decodeFailure(`interfaces[${i}] is null`);
  });
  (r.ips as Array<IPConfig | null> | undefined)?.forEach((ip, i) => {
    if (ip === null) throw decodeFailure(`ips[${i}] is null`);
    if (typeof ip.address !== "string") throw decodeFailure(`ips[${i}].address is missing`);
    checkCidr(ip.address, `ips[${i}].address`);
    checkIp(ip.gateway, `ips[${i}].gateway`);
  });
  checkRoutes(r.routes, "routes");
}

function check020(r: Result020): void {
  for (const fam of ["ip4", "ip6"] as const) {
    const block = r[fam];
    if (!block) continue;
    if (typeof block.ip !== "string") throw decodeFailure(`${fam}.ip is missing`);
    checkCidr(block.ip, `${fam}.ip`);
    checkIp(block.gateway, `${fam}.gateway`);
    checkRoutes(block.routes, `${fam}.routes`);
  }
}

/** Go's decode of a result document, its errors as code 6. */
function decodeAs<T>(node: JsonNode, schema: JsonSchema): T {
  try {
    return goDecode(node, schema, "Result") as T;
  } catch (err) {
    throw decodeFailure((err as Error).message, err);
  }
}

/**
 * Reads a result document into the internal (1.x) layout. `version` is the version to assume when the
 * document has no cniVersion, as invoke's fixupResultVersion and skel's prevResult parsing do. The
 * document is decoded as the Go result types decode it: keys case-insensitively, in sorted order (a
 * prevResult reaches the reference as a map it marshals again, which sorts the keys).
 */
export function parseResult(raw: unknown, version: string): Result {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw decodeFailure("failed to parse result: not a JSON object");
  }
  const node = nodeOf(raw);
  const head = decodeAs<{ cniVersion?: string }>(node, { type: "object", properties: { cniVersion: str } });
  // The 0.2.0 type reads an empty version as 0.1.0.
  const v = head.cniVersion || version || "0.1.0";
  if (!isSupported(v)) {
    throw new CniError(ErrorCode.Internal, `unsupported CNI result version ${goQuote(v)}`);
  }
  if (resultFamily(v) === "020") {
    const doc = decodeAs<Result020>(node, result020Schema);
    check020(doc);
    return from020({ ...doc, cniVersion: v });
  }
  const r = decodeAs<Result>(node, resultSchema);
  checkResult(r);
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
    throw new CniError(ErrorCode.Internal, `could not parse prevResult: ${e.msg}`, e.details, { cause: err });
  }
}

/** Converts a result document from its own version to `version`. */
export function convertResult(raw: unknown, version: string, assumedVersion = version): AnyResult {
  return formatResult(parseResult(raw, assumedVersion), version);
}
