import { Address4, Address6 } from "ip-address";

/**
 * Address math on CIDR strings ("10.244.1.7/24", "fd00::7/64") and bare IPs, through ip-address. Output
 * is in Go's net.IP / net.IPNet String() form (RFC 5952 for v6), which is what results and iptables rules
 * carry.
 */
export type IpFamily = 4 | 6;

export interface IpNet {
  family: IpFamily;
  /** The address itself, canonical. */
  ip: string;
  prefix: number;
}

function parseAny(s: string): Address4 | Address6 {
  if (Address4.isValid(s)) return new Address4(s);
  if (Address6.isValid(s)) return new Address6(s);
  throw new Error(`invalid IP address ${JSON.stringify(s)}`);
}

export function familyOf(ipOrCidr: string): IpFamily {
  return ipOrCidr.includes(":") ? 6 : 4;
}

/** Parses "a.b.c.d/n" or "x::y/n"; a bare address gets the full-length prefix. */
export function parseIpNet(cidr: string): IpNet {
  const a = parseAny(cidr);
  const family: IpFamily = a instanceof Address4 ? 4 : 6;
  const prefix = cidr.includes("/") ? a.subnetMask : family === 4 ? 32 : 128;
  return { family, ip: canonicalIp(a.addressMinusSuffix ?? a.address), prefix };
}

/** The canonical text of a bare IP ("fd00:0::1" -> "fd00::1"). */
export function canonicalIp(ip: string): string {
  const a = parseAny(ip.split("/")[0]!);
  return a instanceof Address4 ? a.correctForm() : (a as Address6).correctForm();
}

export function formatIpNet(n: IpNet): string {
  return `${n.ip}/${n.prefix}`;
}

/** "10.244.1.7/24" -> "10.244.1.0/24" (Go's IPNet after net.ParseCIDR). */
export function networkOf(cidr: string): string {
  const n = parseIpNet(cidr);
  const a = parseAny(`${n.ip}/${n.prefix}`);
  return `${canonicalIp(a.startAddress().correctForm())}/${n.prefix}`;
}

/** The first address after the network address: the reference's calcGatewayIP (ip.NextIP(network)). */
export function firstHost(cidr: string): string {
  const n = parseIpNet(cidr);
  const a = parseAny(`${n.ip}/${n.prefix}`);
  return canonicalIp(a.startAddress().offset(1).correctForm());
}

/** Whether `ip` lies in `cidr`. */
export function contains(cidr: string, ip: string): boolean {
  const net = parseIpNet(cidr);
  if (familyOf(ip) !== net.family) return false;
  const outer = parseAny(`${net.ip}/${net.prefix}`);
  const inner = parseAny(ip.split("/")[0]!);
  return net.family === 4
    ? (inner as Address4).isInSubnet(outer as Address4)
    : (inner as Address6).isInSubnet(outer as Address6);
}

/** Whether two prefixes overlap (either contains the other's address), as ensureAddr tests for v6. */
export function overlaps(a: string, b: string): boolean {
  return contains(a, parseIpNet(b).ip) || contains(b, parseIpNet(a).ip);
}

/** The default route's destination for a family. */
export function defaultDst(family: IpFamily): string {
  return family === 4 ? "0.0.0.0/0" : "::/0";
}

/** Normalises a CIDR to canonical text keeping host bits ("fd00:0::2/64" -> "fd00::2/64"). */
export function canonicalCidr(cidr: string): string {
  return formatIpNet(parseIpNet(cidr));
}
