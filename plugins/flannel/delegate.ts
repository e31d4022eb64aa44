import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { NetConf } from "../../shared/cni/types.js";
import type { SubnetEnv } from "../../shared/flannel/subnet-env.js";
import { formatCidr, formatIp, parseCidr, parseIp } from "../../shared/net/ipaddr.js";
import { inStructOrder } from "./go-json.js";

/** The flannel plugin's network configuration (flannel-io/cni-plugin `NetConf`). */
export interface FlannelNetConf extends NetConf {
  subnetFile?: string;
  dataDir?: string;
  /** Template for the delegated plugin's config; flannel fills in name, ipam and defaults. */
  delegate?: Record<string, unknown> | null;
  /** Free-form base for the delegate's `ipam`; unknown keys pass through. */
  ipam?: { type?: string; [key: string]: unknown };
}

export type DelegateConfig = Record<string, unknown> & { type: string };

const has = (o: object, k: string) => Object.hasOwn(o, k);

/** The three checks the reference makes on `delegate` before using it (ADD only). */
export function validateDelegateTemplate(delegate: Record<string, unknown>): void {
  const bad = (msg: string) => new CniError(ErrorCode.InvalidNetworkConfig, msg);
  if (has(delegate, "type") && typeof delegate.type !== "string") {
    throw bad("'delegate' dictionary, if present, must have (string) 'type' field");
  }
  if (has(delegate, "name"))
    throw bad("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  if (has(delegate, "ipam"))
    throw bad("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/**
 * One `ipam.routes` entry decoded into CNI's `types.Route` and encoded again: unknown keys dropped, `dst`
 * keeps its host bits, addresses normalised, zero-valued optional fields omitted, struct key order.
 */
function routeOf(raw: unknown, i: number): Record<string, unknown> {
  const fail = (why: string, options?: ErrorOptions) =>
    new Error(`failed to parse ipam.routes: routes[${i}]: ${why}`, options);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw fail("not an object");
  const r = raw as Record<string, unknown>;
  // Go would marshal a missing dst as "<nil>", which no delegate can parse; refuse it here instead.
  if (typeof r.dst !== "string") throw fail("dst must be a CIDR string");
  const out: Record<string, unknown> = {};
  try {
    out.dst = formatCidr(parseCidr(r.dst));
    if (r.gw !== undefined && r.gw !== null && r.gw !== "") {
      if (typeof r.gw !== "string") throw new Error("gw must be a string");
      out.gw = formatIp(parseIp(r.gw));
    }
  } catch (err) {
    throw fail((err as Error).message, { cause: err });
  }
  for (const k of ["mtu", "advmss", "priority"] as const) {
    if (r[k] === undefined || r[k] === null) continue;
    if (!isInt(r[k])) throw fail(`${k} must be an integer`);
    if (r[k] !== 0) out[k] = r[k];
  }
  for (const k of ["table", "scope"] as const) {
    // Pointers in the Go struct: present means written, even when 0.
    if (r[k] === undefined || r[k] === null) continue;
    if (!isInt(r[k])) throw fail(`${k} must be an integer`);
    out[k] = r[k];
  }
  return inStructOrder(out);
}

/** `ipam.routes` as the user wrote them (reference: getIPAMRoutes), for the delegate's route list. */
function userRoutes(ipam: Record<string, unknown>): Record<string, unknown>[] {
  if (!has(ipam, "routes") || ipam.routes === null) return [];
  if (!Array.isArray(ipam.routes)) throw new Error("failed to parse ipam.routes: not a list");
  return ipam.routes.map(routeOf);
}

/**
 * The delegate's `ipam` (reference: getDelegateIPAM): the user's ipam with its unknown keys, `type`
 * defaulting to host-local, `ranges` REPLACED by this node's subnets (v4 set first), and `routes` = the
 * user's routes followed by one per flannel network (v4 then v6), without gateways (bridge fills them in).
 */
export function delegateIpam(conf: FlannelNetConf, env: SubnetEnv): Record<string, unknown> {
  const ipam: Record<string, unknown> = { ...(conf.ipam ?? {}) };
  if (!has(ipam, "type")) ipam.type = "host-local";
  const ranges: Array<Array<{ subnet: string }>> = [];
  if (env.subnet) ranges.push([{ subnet: env.subnet }]);
  if (env.ipv6Subnet) ranges.push([{ subnet: env.ipv6Subnet }]);
  ipam.ranges = ranges;
  let routes: Record<string, unknown>[];
  try {
    routes = userRoutes(ipam);
  } catch (err) {
    throw new CniError(
      ErrorCode.InvalidNetworkConfig,
      `failed to assemble Delegate IPAM: failed to read IPAM routes: ${(err as Error).message}`,
      "",
      { cause: err },
    );
  }
  for (const dst of [...env.networks, ...env.ipv6Networks]) routes.push(inStructOrder({ dst }));
  ipam.routes = routes;
  return ipam;
}

/**
 * The delegate config exactly as the reference's ADD builds it (doCmdAdd, Linux), in its order: the
 * template (validated), runtimeConfig passed through wholesale, name overwritten, type defaulting to
 * bridge, ipMasq = NOT FLANNEL_IPMASQ (flanneld already masquerades, so the bridge must not), mtu =
 * FLANNEL_MTU, isGateway only for bridge, cniVersion overwritten when set, then ipam.
 */
export function buildDelegateConfig(conf: FlannelNetConf, env: SubnetEnv): DelegateConfig {
  const template = conf.delegate ?? {};
  validateDelegateTemplate(template);
  const d: Record<string, unknown> = { ...template };
  if (conf.runtimeConfig !== undefined && conf.runtimeConfig !== null) d.runtimeConfig = conf.runtimeConfig;
  d.name = conf.name;
  if (!has(d, "type")) d.type = "bridge";
  if (!has(d, "ipMasq")) d.ipMasq = !env.ipMasq;
  if (!has(d, "mtu")) d.mtu = env.mtu;
  if (d.type === "bridge" && !has(d, "isGateway")) d.isGateway = true;
  if (conf.cniVersion) d.cniVersion = conf.cniVersion;
  d.ipam = delegateIpam(conf, env);
  return d as DelegateConfig;
}

/** The delegate plugin's type as the saved or rebuilt config names it. */
export function delegateType(conf: FlannelNetConf): string {
  const t = conf.delegate?.type;
  return typeof t === "string" ? t : "bridge";
}

/** The IPAM plugin the delegate will call. */
export function ipamType(conf: FlannelNetConf): string {
  const t = conf.ipam?.type;
  return typeof t === "string" ? t : "host-local";
}
