import {
  type Family,
  formatAddr,
  formatPrefix,
  overlaps,
  type Prefix,
  parseGoIp,
  sizeOf,
  tryPrefix,
} from "./addr.js";
import type { Lease } from "./lease.js";
import type { NetworkConfig } from "./net-conf.js";

/**
 * Subnet carving as flanneld's local manager does it (pkg/subnet/etcd/local_manager.go allocateSubnet):
 * the candidates are the /SubnetLen subnets from SubnetMin to SubnetMax; the free ones are those no
 * lease overlaps; a node takes one at random among the first 100 free, so nodes starting together rarely
 * race for the same one.
 */

/** The subnets a node may lease in one family. */
export interface SubnetRange {
  family: Family;
  len: number;
  /** Network addresses of the first and last candidate. */
  min: bigint;
  max: bigint;
}

/** How many free subnets flanneld collects before picking one at random. */
export const PICK_AMONG = 100;

export function rangeOf(config: NetworkConfig, family: Family): SubnetRange | undefined {
  if (family === 4) {
    if (!config.enableIPv4 || !config.subnetMin || !config.subnetMax) return undefined;
    return { family, len: config.subnetLen, min: addr(config.subnetMin), max: addr(config.subnetMax) };
  }
  if (!config.enableIPv6 || !config.ipv6SubnetMin || !config.ipv6SubnetMax) return undefined;
  return {
    family,
    len: config.ipv6SubnetLen,
    min: addr(config.ipv6SubnetMin),
    max: addr(config.ipv6SubnetMax),
  };
}

const addr = (text: string) => parseGoIp(text).value;

/** The subnets of one family that leases hold. */
function taken(leases: Lease[], family: Family): Prefix[] {
  return leases.flatMap((l) => {
    const p = tryPrefix(family === 4 ? l.subnet : l.ipv6Subnet);
    return p ? [p] : [];
  });
}

/** The result of a scan: up to `limit` free candidates, and how many candidates were looked at. */
export interface FreeScan {
  free: bigint[];
  scanned: bigint;
  /** Whether the whole range was scanned (always, when fewer than `limit` are free). */
  complete: boolean;
}

/** flanneld's loop: from min upwards, skip every candidate a lease overlaps, stop at `limit` free ones. */
export function freeSubnets(range: SubnetRange, leases: Lease[], limit = PICK_AMONG): FreeScan {
  const held = taken(leases, range.family);
  // Leases of the configured length (nearly all) are found by address; others by overlap.
  const exact = new Set(held.filter((p) => p.len === range.len).map((p) => p.ip));
  const odd = held.filter((p) => p.len !== range.len);
  const step = sizeOf(range.family, range.len);
  const free: bigint[] = [];
  let scanned = 0n;
  for (let ip = range.min; ip <= range.max && free.length < limit; ip += step) {
    scanned++;
    if (exact.has(ip)) continue;
    const cand: Prefix = { family: range.family, ip, len: range.len };
    if (odd.some((p) => overlaps(cand, p))) continue;
    free.push(ip);
  }
  return { free, scanned, complete: free.length < limit };
}

/** Whether a lease's subnet(s) fit the config (flanneld's isSubnetConfigCompat / isIPv6SubnetConfigCompat). */
export function isCompatible(config: NetworkConfig, l: Pick<Lease, "subnet" | "ipv6Subnet">): boolean {
  return fits(rangeOf(config, 4), l.subnet) && fits(rangeOf(config, 6), l.ipv6Subnet);
}

function fits(range: SubnetRange | undefined, subnet: string | undefined): boolean {
  // A family the config does not enable must not be in the lease either.
  if (!range) return subnet === undefined;
  const p = tryPrefix(subnet);
  return (
    p !== undefined &&
    p.family === range.family &&
    p.len === range.len &&
    p.ip >= range.min &&
    p.ip <= range.max
  );
}

/** Whether any lease holds (overlaps) the subnet(s). */
export function holderOf(leases: Lease[], l: Pick<Lease, "subnet" | "ipv6Subnet">): Lease | undefined {
  const v4 = tryPrefix(l.subnet);
  const v6 = tryPrefix(l.ipv6Subnet);
  return leases.find((o) => {
    const a = tryPrefix(o.subnet);
    const b = tryPrefix(o.ipv6Subnet);
    return (v4 && a && overlaps(v4, a)) || (v6 && b && overlaps(v6, b));
  });
}

/** No subnet left: the message says how many there are and how many are taken. */
export class OutOfSubnetsError extends Error {
  constructor(
    message: string,
    readonly total: bigint,
    readonly used: bigint,
  ) {
    super(message);
    this.name = "OutOfSubnetsError";
  }
}

/**
 * A random free subnet per enabled family, or OutOfSubnetsError ("out of subnets", flanneld's words,
 * then the range, the used and free counts and the number of leases).
 */
export function pickSubnets(
  config: NetworkConfig,
  leases: Lease[],
  random: () => number = Math.random,
): Pick<Lease, "subnet" | "ipv6Subnet"> {
  const out: Pick<Lease, "subnet" | "ipv6Subnet"> = {};
  for (const family of [4, 6] as const) {
    const range = rangeOf(config, family);
    if (!range) continue;
    const scan = freeSubnets(range, leases);
    if (scan.free.length === 0) {
      const span = `${formatPrefix({ family, ip: range.min, len: range.len })} .. ${formatPrefix({ family, ip: range.max, len: range.len })}`;
      throw new OutOfSubnetsError(
        `out of subnets: all ${scan.scanned} /${range.len} subnets in ${span} are leased (${scan.scanned} used, 0 free; ${leases.length} leases in the store)`,
        scan.scanned,
        scan.scanned,
      );
    }
    const pick = scan.free[Math.floor(random() * scan.free.length)] ?? scan.free[0]!;
    const text = `${formatAddr(family, pick)}/${range.len}`;
    if (family === 4) out.subnet = text;
    else out.ipv6Subnet = text;
  }
  return out;
}
