import { formatIp, tryParseCidr, tryParseIp } from "../shared/net/ipaddr.js";

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

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** All ones in the first `len` bits of the family. */
export function maskOf(family: Family, len: number): bigint {
  const bits = BigInt(bitsOf(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
}

/** How many addresses a prefix of `len` spans (the distance between two neighbouring subnets). */
export const sizeOf = (family: Family, len: number): bigint => 1n << BigInt(bitsOf(family) - len);

/** Go's net.ParseCIDR reduced to the network, or Go's error text (`invalid CIDR address: <text>`). */
export function parseGoCidr(text: string): Prefix {
  const c = tryParseCidr(text);
  // A v4-mapped address with a v6 mask is neither flannel's IPv4 nor a sensible IPv6 network.
  if (!c || (c.maskFamily ?? c.ip.family) !== c.ip.family) throw new Error(`invalid CIDR address: ${text}`);
  return { family: c.ip.family, ip: c.ip.value & maskOf(c.ip.family, c.prefix), len: c.prefix };
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
export const formatPrefix = (p: Prefix): string => `${formatAddr(p.family, p.ip)}/${p.len}`;

/** Whether `ip` lies inside `p` (flannel's IP4Net.Contains). */
export const containsAddr = (p: Prefix, ip: bigint): boolean => (ip & maskOf(p.family, p.len)) === p.ip;

/** Whether two prefixes share an address (flannel's Overlaps: compare under the shorter mask). */
export function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const m = maskOf(a.family, Math.min(a.len, b.len));
  return (a.ip & m) === (b.ip & m);
}

/** A canonical CIDR string as a prefix, or undefined (for leases and subnet.env values read back). */
export function tryPrefix(text: string | undefined): Prefix | undefined {
  if (text === undefined) return undefined;
  try {
    return parseGoCidr(text);
  } catch {
    return undefined;
  }
}
