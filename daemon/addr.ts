import {
  type Cidr,
  overlaps as cidrOverlaps,
  contains,
  formatCidr,
  formatIp,
  bitsOf as ipBits,
  networkOf,
  tryParseCidr,
  tryParseIp,
} from "../shared/net/ipaddr.js";

/**
 * The daemon's door to address math: net-conf parsing and subnet carving go through these few
 * functions, over the library's bigint addresses (shared/net/ipaddr.ts), in flannel's own terms.
 */

export type Family = 4 | 6;

/** A prefix in network form (host bits cleared), as flannel's ip.IP4Net / ip.IP6Net hold a parsed CIDR. */
export interface Prefix {
  family: Family;
  /** The network address. */
  ip: bigint;
  len: number;
}

export const bitsOf = (family: Family): number => ipBits(family);

const cidrOf = (p: Prefix): Cidr => ({ ip: { family: p.family, value: p.ip }, prefix: p.len });

/** How many addresses a prefix of `len` spans (the distance between two neighbouring subnets). */
export const sizeOf = (family: Family, len: number): bigint => 1n << BigInt(bitsOf(family) - len);

/** Whether `ip` is the network address of its `len`-long prefix (on a SubnetLen boundary). */
export const onBoundary = (family: Family, ip: bigint, len: number): boolean =>
  networkOf({ ip: { family, value: ip }, prefix: len }).ip.value === ip;

/** Go's net.ParseCIDR reduced to the network, or Go's error text (`invalid CIDR address: <text>`). */
export function parseGoCidr(text: string): Prefix {
  const c = tryParseCidr(text);
  // A v4-mapped address with a v6 mask is neither flannel's IPv4 nor a sensible IPv6 network.
  if (!c || (c.maskFamily ?? c.ip.family) !== c.ip.family) throw new Error(`invalid CIDR address: ${text}`);
  const n = networkOf(c);
  return { family: n.ip.family, ip: n.ip.value, len: n.prefix };
}

/** Go's net.ParseIP, or flannel's error text (`invalid IP address format`). */
export function parseGoIp(text: string): { family: Family; value: bigint } {
  const ip = tryParseIp(text);
  if (!ip) throw new Error("invalid IP address format");
  return ip;
}

/** Go's text of an address ("10.244.3.0", "fc00:0:0:22::"). */
export const formatAddr = (family: Family, value: bigint): string => formatIp({ family, value });

/** Go's IPNet.String() ("10.244.3.0/24"). */
export const formatPrefix = (p: Prefix): string => formatCidr(cidrOf(p));

/** Whether `ip` lies inside `p` (flannel's IP4Net.Contains). */
export const containsAddr = (p: Prefix, ip: bigint): boolean =>
  contains(cidrOf(p), { family: p.family, value: ip });

/** Whether two prefixes share an address (flannel's Overlaps: compare under the shorter mask). */
export const overlaps = (a: Prefix, b: Prefix): boolean => cidrOverlaps(cidrOf(a), cidrOf(b));

/** A canonical CIDR string as a prefix, or undefined (for leases and subnet.env values read back). */
export function tryPrefix(text: string | undefined): Prefix | undefined {
  if (text === undefined) return undefined;
  try {
    return parseGoCidr(text);
  } catch {
    return undefined;
  }
}
