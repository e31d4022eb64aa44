import { loadCniArgs } from "../cni/args.js";
import { CniError, ErrorCode } from "../cni/errors.js";
import { goQuote } from "../cni/goquote.js";
import { type JsonSchema, routeSchema } from "../cni/schemas.js";
import type { NetConf, Route } from "../cni/types.js";
import { atLeast } from "../cni/versions.js";
import { formatCidr, formatIp, type IP, tryParseCidr, tryParseIp, tryParseIpOrCidr } from "../net/ipaddr.js";
import type { RangeInput } from "./range.js";
import { canonicalizeRangeSet, type RangeSet, rangeSetsOverlap } from "./range-set.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/** The host-local configuration after LoadIPAMConfig: range sets final and canonical, requests parsed. */
export interface IpamConfig {
  /** The network name: the reservations live in `<dataDir>/<name>`. */
  name: string;
  cniVersion: string;
  dataDir: string;
  /** Range sets in their final order: runtimeConfig.ipRanges, then the legacy subnet, then `ranges`. */
  ranges: RangeSet[];
  routes?: Route[];
  resolvConf?: string;
  /** Requested addresses: CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips. */
  requestedIps: IP[];
}

/** A range as it appears in JSON (`ranges`, `runtimeConfig.ipRanges`, or the legacy top-level keys). */
export interface RangeJson {
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface IpamJson extends RangeJson {
  type?: string;
  ranges?: RangeJson[][] | null;
  routes?: Route[] | null;
  dataDir?: string;
  resolvConf?: string;
}

const str = { type: "string" };
/** allocator.Range (its net.IP and IPNet fields are JSON strings). */
const rangeSchema: JsonSchema = {
  type: "object",
  title: "allocator.Range",
  properties: { rangeStart: str, rangeEnd: str, subnet: str, gateway: str },
};
/** []RangeSet: a RangeSet is a []Range. */
const rangeSets: JsonSchema = { type: "array", items: { type: "array", items: rangeSchema } };
/** []*ip.IP */
const ipList: JsonSchema = { type: "array", items: str };

/**
 * host-local's allocator.Net as a schema: skel decodes the config into it as json.Unmarshal does
 * (case-insensitive keys, so containerd's `ipRanges` entries `{"Subnet":..,"RangeStart":..}` read as
 * they do for the reference). Everything the reference checks beyond types keeps its own wording
 * (config.ts).
 */
export const hostLocalSchema: JsonSchema = {
  type: "object",
  title: "allocator.Net",
  properties: {
    name: str,
    cniVersion: str,
    ipam: {
      type: ["object", "null"],
      title: "*allocator.IPAMConfig",
      properties: {
        // *Range is embedded: the legacy single-range keys sit in ipam itself.
        ...(rangeSchema.properties as object),
        Name: str,
        type: str,
        routes: { type: "array", items: { ...routeSchema, required: ["dst"] } },
        dataDir: str,
        resolvConf: str,
        ranges: rangeSets,
      },
    },
    runtimeConfig: { type: "object", properties: { ipRanges: rangeSets, ips: ipList } },
    args: {
      type: ["object", "null"],
      properties: {
        cni: { type: ["object", "null"], title: "*allocator.IPAMArgs", properties: { ips: ipList } },
      },
    },
  },
};

const LEGACY_KEYS = ["subnet", "rangeStart", "rangeEnd", "gateway"] as const;

function configError(msg: string, options?: ErrorOptions): CniError {
  return new CniError(ErrorCode.InvalidNetworkConfig, msg, "", options);
}

/** A net.IP field: empty means unset; anything else must parse (Go's "invalid IP address: x"). */
function ipField(text: string | undefined): IP | undefined {
  if (text === undefined || text === "") return undefined;
  const ip = tryParseIp(text);
  if (!ip) throw configError(`invalid IP address: ${text}`);
  return ip;
}

function rangeInput(r: RangeJson): RangeInput {
  let subnet: RangeInput["subnet"];
  if (r.subnet !== undefined) {
    subnet = tryParseCidr(r.subnet);
    if (!subnet) throw configError(`invalid CIDR address: ${r.subnet}`);
  }
  return {
    subnet,
    rangeStart: ipField(r.rangeStart),
    rangeEnd: ipField(r.rangeEnd),
    gateway: ipField(r.gateway),
  };
}

function rangeSetInputs(sets: RangeJson[][] | null | undefined): RangeInput[][] {
  return (sets ?? []).map((set) => (set ?? []).map(rangeInput));
}

/** An ip.IP list entry (`<ip>` or `<ip>/<len>`); "" decodes to no address and fails canonicalisation. */
function requestedIp(text: string): IP | null {
  if (text === "") return null;
  const ip = tryParseIpOrCidr(text);
  if (ip) return ip;
  throw configError(`invalid IP address ${text}`);
}

/**
 * CNI_ARGS `IP=`: the reference takes one address; weft also takes a comma list (what the static IPAM
 * plugin accepts), which the reference rejects, so a single address reads the same in both.
 */
function requestedEnvIps(value: string): IP[] {
  return value.split(",").map((item) => {
    const text = item.trim();
    const ip = tryParseIpOrCidr(text);
    if (ip) return ip;
    // As shared/cni/args.ts reports LoadArgs failures: code 999, Go's %q.
    throw new CniError(
      ErrorCode.Internal,
      `ARGS: error parsing value of pair ${goQuote(`IP=${value}`)}: invalid IP address ${text}`,
    );
  });
}

/** Routes are copied into the result; their addresses print as the Go types re-marshal them. */
function routeOf(r: Route): Route {
  const dst = tryParseCidr(r.dst);
  if (!dst) throw configError(`invalid CIDR address: ${r.dst}`);
  const out: Route = { dst: formatCidr(dst) };
  if (r.gw !== undefined && r.gw !== "") {
    const gw = tryParseIp(r.gw);
    if (!gw) throw configError(`invalid IP address: ${r.gw}`);
    out.gw = formatIp(gw);
  }
  for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
    if (r[k] !== undefined) out[k] = r[k];
  }
  return out;
}

/**
 * The reference's LoadIPAMConfig: requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips all
 * concatenated (even though CONVENTIONS says CNI_ARGS yields to `args`); the legacy top-level range is
 * prepended to `ranges` as its own set, then runtimeConfig.ipRanges is prepended before it, so range set
 * indexes (and the last_reserved_ip.<N> files) shift with them. Errors are the reference's words.
 */
export function loadIpamConfig(conf: NetConf, envArgs: string): IpamConfig {
  const ipam = conf.ipam as IpamJson | null | undefined;
  if (!ipam) throw configError("IPAM config missing 'ipam' key");

  // JSON decoding comes first in the reference, so malformed addresses fail before anything else.
  const hasLegacy = LEGACY_KEYS.some((k) => ipam[k] !== undefined);
  const legacy = hasLegacy ? rangeInput(ipam) : undefined;
  const configured = rangeSetInputs(ipam.ranges);
  const runtime = rangeSetInputs(conf.runtimeConfig?.ipRanges as RangeJson[][] | undefined);
  const routes = ipam.routes?.map(routeOf);

  const requested: Array<IP | null> = [];
  if (envArgs !== "") {
    const ip = loadCniArgs(envArgs, ["IP"]).IP;
    if (ip !== undefined && ip !== "") requested.push(...requestedEnvIps(ip));
  }
  for (const text of conf.args?.cni?.ips ?? []) requested.push(requestedIp(text));
  for (const text of conf.runtimeConfig?.ips ?? []) requested.push(requestedIp(text));
  const requestedIps = requested.map((ip) => {
    if (!ip) throw configError("cannot understand ip: IP <nil> not v4 nor v6");
    return ip;
  });

  let inputs = configured;
  if (legacy?.subnet) inputs = [[legacy], ...inputs];
  if (runtime.length > 0) inputs = [...runtime, ...inputs];
  if (inputs.length === 0) throw configError("no IP ranges specified");

  const ranges = inputs.map((set, i) => {
    try {
      return canonicalizeRangeSet(set);
    } catch (err) {
      throw configError(`invalid range set ${i}: ${(err as Error).message}`, { cause: err });
    }
  });

  const v4 = ranges.filter((s) => s[0]!.rangeStart.family === 4).length;
  const v6 = ranges.length - v4;
  if ((v4 > 1 || v6 > 1) && !(conf.cniVersion !== "" && atLeast(conf.cniVersion, "0.3.0"))) {
    throw configError(`CNI version ${conf.cniVersion} does not support more than 1 address per family`);
  }

  for (let i = 0; i < ranges.length - 1; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (rangeSetsOverlap(ranges[i]!, ranges[j]!)) throw configError(`range set ${i} overlaps with ${j}`);
    }
  }

  const out: IpamConfig = {
    name: conf.name,
    cniVersion: conf.cniVersion,
    dataDir: ipam.dataDir || DEFAULT_DATA_DIR,
    ranges,
    requestedIps,
  };
  if (routes) out.routes = routes;
  if (ipam.resolvConf) out.resolvConf = ipam.resolvConf;
  return out;
}
