/**
 * IP addresses and prefixes as values, read and printed the way Go's `net` package does (the reference
 * plugins and flanneld are Go: results, rules and subnet.env carry Go's text), plus the prefix math the
 * IPAM ranges and the daemon's subnet carving need. (Interface addresses, the `ip addr` commands, are
 * addr.ts.)
 *
 * No dependencies and no node:net: the results parser and every plugin load this on each pod ADD.
 */

export type Family = 4 | 6;

/**
 * An address: family plus integer value. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are held as IPv4,
 * as Go's net.IP does (To4() succeeds, String() prints the dotted quad).
 */
export interface IP {
  family: Family;
  value: bigint;
}

/** An address with a prefix length, host bits kept unless cleared by `networkOf`: Go's net.IPNet. */
export interface Cidr {
  ip: IP;
  prefix: number;
  /**
   * The family whose bit count `prefix` counts, when it differs from `ip.family`: only a v4-mapped address
   * written in IPv6 syntax with a prefix ("::ffff:10.0.0.0/120") has a 128-bit mask over an IPv4 address.
   */
  maskFamily?: Family;
}

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** The family of an address or CIDR text by its syntax alone: every IPv6 form has a colon, no IPv4 one has. */
export function familyOfText(ipOrCidr: string): Family {
  return ipOrCidr.includes(":") ? 6 : 4;
}

const V4_MAPPED = 0xffffn << 32n;
const V4_PART = /^(0|[1-9]\d{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** A dotted quad: four decimal parts up to 255, no leading zeros (refused since Go 1.17). */
function parseV4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const p of parts) {
    if (!V4_PART.test(p) || Number(p) > 255) return undefined;
    value = (value << 8n) | BigInt(p);
  }
  return value;
}

/**
 * RFC 4291 text: up to eight groups of 1-4 hex digits (at most 4 as Go 1.22+ reads them; Go 1.19 also
 * took longer runs of leading zeros), one `::`, an IPv4 tail only in the last 32 bits, no zone.
 */
function parseV6(text: string): bigint | undefined {
  let s = text;
  const lastColon = s.lastIndexOf(":");
  if (lastColon < 0) return undefined;
  if (s.includes(".", lastColon)) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return undefined;
  const groups = [...head, ...Array<string>(8 - n).fill("0"), ...tail];
  if (!groups.every((g) => V6_GROUP.test(g))) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(`0x${g}`);
  return value;
}

/** An address of the 128-bit space as Go holds it: the ::ffff:0:0/96 block is IPv4 (To4). */
function fromV6(value: bigint): IP {
  return value >> 32n === 0xffffn ? { family: 4, value: value & 0xffffffffn } : { family: 6, value };
}

/** Go's net.ParseIP: a dotted quad or IPv6 text, no zone, no prefix; undefined where Go returns nil. */
export function tryParseIp(text: string): IP | undefined {
  if (!text.includes(":")) {
    const v4 = parseV4(text);
    return v4 === undefined ? undefined : { family: 4, value: v4 };
  }
  const v6 = parseV6(text);
  return v6 === undefined ? undefined : fromV6(v6);
}

/** net.ParseIP, failing with the text the reference plugins use: `invalid IP address: <text>`. */
export function parseIp(text: string): IP {
  const ip = tryParseIp(text);
  if (!ip) throw new Error(`invalid IP address: ${text}`);
  return ip;
}

/**
 * Go's net.ParseCIDR keeping the host bits of the address (as CNI's types.ParseCIDR does): an address, a
 * slash and a decimal prefix length (leading zeros allowed, as Go's dtoi reads it) no longer than the bits
 * of the family the address is written in.
 */
export function tryParseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const ip = tryParseIp(addr);
  if (!ip || !/^\d+$/.test(len)) return undefined;
  const maskFamily = familyOfText(addr);
  const prefix = Number(len);
  if (prefix > bitsOf(maskFamily)) return undefined;
  return cidrOf(ip, prefix, maskFamily);
}

/** net.ParseCIDR, failing with Go's ParseError text: `invalid CIDR address: <text>`. */
export function parseCidr(text: string): Cidr {
  const cidr = tryParseCidr(text);
  if (!cidr) throw new Error(`invalid CIDR address: ${text}`);
  return cidr;
}

/** CNI's ip.ParseIP: `<ip>` or `<ip>/<prefix>`, the prefix dropped (host-local takes it from the range). */
export function tryParseIpOrCidr(text: string): IP | undefined {
  return text.includes("/") ? tryParseCidr(text)?.ip : tryParseIp(text);
}

function cidrOf(ip: IP, prefix: number, maskFamily: Family = ip.family): Cidr {
  return maskFamily === ip.family ? { ip, prefix } : { ip, prefix, maskFamily };
}

/** Go's net.IP.String(): a dotted quad for IPv4, RFC 5952 for IPv6 (lower case, longest zero run as ::). */
export function formatIp(ip: IP): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => Number((ip.value >> s) & 0xffn)).join(".");
  }
  const groups: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(Number((ip.value >> s) & 0xffffn));
  // The first longest run of zero groups; "::" never stands for a single group.
  let at = -1;
  let run = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > run) [at, run] = [i, j - i];
    i = Math.max(j, i + 1);
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  return at < 0 ? hex(groups) : `${hex(groups.slice(0, at))}::${hex(groups.slice(at + run))}`;
}

/**
 * The address, family and prefix length Go's IPNet methods work with (networkNumberAndMask): a 128-bit
 * mask over an IPv4 address is cut to its last 32 bits, so "::ffff:10.0.0.1/120" is 10.0.0.1/24.
 */
function inFamily(c: Cidr): { family: Family; value: bigint; prefix: number } {
  const { family, value } = c.ip;
  if (family === 4 && c.maskFamily === 6) return { family, value, prefix: Math.max(0, c.prefix - 96) };
  return { family, value, prefix: c.prefix };
}

/** Go's net.IPNet.String(): `<ip>/<prefix>`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.ip)}/${inFamily(c).prefix}`;
}

/** The bits of a `prefix`-long mask in a `bits`-wide family. */
function maskOf(bits: number, prefix: number): bigint {
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export function ipEqual(a: IP | undefined, b: IP | undefined): boolean {
  return a !== undefined && b !== undefined && a.family === b.family && a.value === b.value;
}

/** Same address, same prefix length (host bits count: compare `networkOf` both for "same network"). */
export function cidrEqual(a: Cidr, b: Cidr): boolean {
  return ipEqual(a.ip, b.ip) && inFamily(a).prefix === inFamily(b).prefix;
}

/** Orders by value alone, as the reference's ip.Cmp compares the bytes. */
export function compareIp(a: IP, b: IP): number {
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The address after `ip`, wrapping at the top of the family like the reference's ip.NextIP. */
export function nextIp(ip: IP): IP {
  const max = (1n << BigInt(bitsOf(ip.family))) - 1n;
  return { family: ip.family, value: ip.value === max ? 0n : ip.value + 1n };
}

/**
 * The prefix with its host bits cleared: the IPNet net.ParseCIDR returns ("10.244.1.7/24" ->
 * 10.244.1.0/24). As in Go, a 128-bit mask clears bits of the v4-mapped form ("::ffff:10.0.0.1/24" -> ::/24).
 */
export function networkOf(c: Cidr): Cidr {
  if (c.ip.family === 4 && c.maskFamily === 6) {
    return cidrOf(fromV6((V4_MAPPED | c.ip.value) & maskOf(128, c.prefix)), c.prefix, 6);
  }
  const value = c.ip.value & maskOf(bitsOf(c.ip.family), c.prefix);
  return { ip: { family: c.ip.family, value }, prefix: c.prefix };
}

/**
 * The address after the network address: the bridge's gateway (the reference's calcGatewayIP) and the
 * address flanneld writes as FLANNEL_SUBNET ("10.244.3.0/24" -> 10.244.3.1).
 */
export function firstHost(c: Cidr): IP {
  return nextIp(networkOf(c).ip);
}

/** The last address of the prefix (the broadcast address for IPv4). */
export function lastOf(c: Cidr): IP {
  const { family, value, prefix } = inFamily(c);
  const hostBits = (1n << BigInt(bitsOf(family) - prefix)) - 1n;
  return { family, value: value | hostBits };
}

/** Go's IPNet.Contains: same family, same leading `prefix` bits. */
export function contains(c: Cidr, ip: IP): boolean {
  const n = inFamily(c);
  if (ip.family !== n.family) return false;
  const mask = maskOf(bitsOf(n.family), n.prefix);
  return (ip.value & mask) === (n.value & mask);
}

/** Whether two prefixes share an address (either contains the other's network). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const x = inFamily(a);
  const y = inFamily(b);
  if (x.family !== y.family) return false;
  const mask = maskOf(bitsOf(x.family), Math.min(x.prefix, y.prefix));
  return (x.value & mask) === (y.value & mask);
}

/**
 * The prefix of the same length right after `c` (flannel's IP4Net.Next()), or undefined past the end of
 * the address family.
 */
export function nextSubnet(c: Cidr): Cidr | undefined {
  const { family, value, prefix } = inFamily(c);
  const bits = bitsOf(family);
  const next = (value & maskOf(bits, prefix)) + (1n << BigInt(bits - prefix));
  return next >> BigInt(bits) === 0n ? { ip: { family, value: next }, prefix } : undefined;
}

/** How many `prefix`-long subnets `outer` holds (0 when `prefix` is shorter than its own or too long). */
export function subnetCount(outer: Cidr, prefix: number): bigint {
  const { family, prefix: own } = inFamily(outer);
  if (!Number.isInteger(prefix) || prefix < own || prefix > bitsOf(family)) return 0n;
  return 1n << BigInt(prefix - own);
}

/** The `n`-th (from 0) `prefix`-long subnet of `outer`; a RangeError when it has no such subnet. */
export function nthSubnet(outer: Cidr, prefix: number, n: bigint | number): Cidr {
  const i = BigInt(n);
  if (i < 0n || i >= subnetCount(outer, prefix)) {
    throw new RangeError(`${formatCidr(outer)} has no subnet /${prefix} number ${i}`);
  }
  const { family } = outer.ip;
  const start = networkOf({ ip: outer.ip, prefix: inFamily(outer).prefix }).ip.value;
  return { ip: { family, value: start + i * (1n << BigInt(bitsOf(family) - prefix)) }, prefix };
}

/**
 * Text in, text out, for code that holds addresses as the strings the kernel and the store print: the
 * canonical form of an address (a prefix, if any, dropped), of a CIDR (host bits kept), and whether a
 * CIDR holds an address. They throw Go's parse errors on text that is not an address.
 */
export function canonicalIpText(text: string): string {
  return formatIp(parseIp(text.split("/")[0]!));
}

export function canonicalCidrText(text: string): string {
  return formatCidr(parseCidr(text));
}

export function containsText(cidr: string, ip: string): boolean {
  return contains(parseCidr(cidr), parseIp(ip.split("/")[0]!));
}
