import { isIPv4, isIPv6 } from "node:net";
import { Address4, Address6 } from "ip-address";

/**
 * An IP address as the allocator handles it: family plus integer value. IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are held as IPv4, as Go's canonicalizeIP (To4 first) does in the reference.
 */
export interface IP {
  family: 4 | 6;
  value: bigint;
}

/** A parsed CIDR that keeps the address as written (host bits included), like CNI's types.ParseCIDR. */
export interface Cidr {
  ip: IP;
  prefix: number;
  /** The address family the mask was written for (a v4-mapped v6 address with a v6 prefix differs from ip.family). */
  maskFamily: 4 | 6;
}

const V4_MAPPED = new Address6("::ffff:0:0/96");

export function bitsOf(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

/** Go's net.ParseIP: dotted quad or IPv6 text, no zone, no prefix. Undefined when it is not an address. */
export function parseIp(text: string): IP | undefined {
  if (isIPv4(text)) return { family: 4, value: new Address4(text).bigInt() };
  if (!isIPv6(text) || text.includes("%")) return undefined;
  const a6 = new Address6(text);
  // Go's To4(): the ::ffff:0:0/96 block is IPv4 whatever way it was written.
  if (a6.isInSubnet(V4_MAPPED)) return { family: 4, value: BigInt.asUintN(32, a6.bigInt()) };
  return { family: 6, value: a6.bigInt() };
}

/**
 * CNI's ip.ParseIP: `<ip>` or `<ip>/<prefix>`; the prefix is dropped because host-local takes the mask
 * from the range.
 */
export function parseIpOrCidr(text: string): IP | undefined {
  if (text.includes("/")) return parseCidr(text)?.ip;
  return parseIp(text);
}

/** Go's net.ParseCIDR, keeping the host bits of the address. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const ip = parseIp(addr);
  if (!ip || !/^[0-9]{1,3}$/.test(len)) return undefined;
  const maskFamily: 4 | 6 = isIPv4(addr) ? 4 : 6;
  const prefix = Number(len);
  if (prefix > bitsOf(maskFamily)) return undefined;
  return { ip, prefix, maskFamily };
}

/** Go's net.IP.String(): dotted quad for IPv4, RFC 5952 form for IPv6. */
export function formatIp(ip: IP): string {
  return ip.family === 4
    ? Address4.fromBigInt(ip.value).correctForm()
    : Address6.fromBigInt(ip.value).correctForm();
}

export function ipEqual(a: IP | undefined, b: IP | undefined): boolean {
  return a !== undefined && b !== undefined && a.family === b.family && a.value === b.value;
}

export function compareIp(a: IP, b: IP): number {
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The address after `ip`, wrapping at the top of the family like the reference's ip.NextIP. */
export function nextIp(ip: IP): IP {
  const max = (1n << BigInt(bitsOf(ip.family))) - 1n;
  return { family: ip.family, value: ip.value === max ? 0n : ip.value + 1n };
}

/** The ip-address object for `ip`, optionally with a prefix length (a subnet). */
function toAddress(ip: IP, prefix?: number): Address4 | Address6 {
  const text = prefix === undefined ? formatIp(ip) : `${formatIp(ip)}/${prefix}`;
  return ip.family === 4 ? new Address4(text) : new Address6(text);
}

function fromAddress(a: Address4 | Address6, family: 4 | 6): IP {
  return { family, value: a.bigInt() };
}

/** The network address of `ip` under `prefix`. */
export function networkOf(ip: IP, prefix: number): IP {
  return fromAddress(toAddress(ip, prefix).startAddress(), ip.family);
}

/** The last address of the subnet (the broadcast for IPv4). */
export function lastOf(network: IP, prefix: number): IP {
  return fromAddress(toAddress(network, prefix).endAddress(), network.family);
}

export function subnetContains(network: IP, prefix: number, ip: IP): boolean {
  if (ip.family !== network.family) return false;
  const subnet = toAddress(network, prefix);
  return ip.family === 4
    ? (toAddress(ip) as Address4).isInSubnet(subnet as Address4)
    : (toAddress(ip) as Address6).isInSubnet(subnet as Address6);
}
