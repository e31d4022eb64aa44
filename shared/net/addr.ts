import { type IpCommand, q } from "./ip.js";
import { cidrEqual, type Family, overlaps, parseCidr, parseIp } from "./ipaddr.js";

/** Interface addresses: `ip addr` lines for a batch and the `ip -j addr show` records. */

export interface AddrRecord {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  scope?: string;
  /** A v4 address in the subnet of an earlier (primary) one: removed with it. */
  secondary?: boolean;
  tentative?: boolean;
  dadfailed?: boolean;
}

/** `ip -j addr show dev X` returns one link entry whose addr_info lists the addresses. */
export function addrsOf(show: unknown[] | undefined): AddrRecord[] {
  const entry = show?.[0] as { addr_info?: AddrRecord[] } | undefined;
  return entry?.addr_info ?? [];
}

export const familyName = (f: Family) => (f === 4 ? "inet" : "inet6");

export const addrCidr = (a: AddrRecord) => `${a.local}/${a.prefixlen}`;

/** The record's address as a value (ip prints the prefix length apart from the address). */
const addrOf = (a: AddrRecord) => ({ ip: parseIp(a.local), prefix: a.prefixlen });

export function addrShow(dev: string, what = `could not get list of IP addresses of ${dev}`): IpCommand {
  return { line: `addr show dev ${q(dev)}`, what, read: true };
}

/** An `addr show` read whose answer is undefined when there is no such link (the batch runs -force). */
export function addrShowIfExists(dev: string): IpCommand {
  return { ...addrShow(dev), mayFail: /does not exist|Cannot find device/ };
}

/**
 * `brd +` (the prefix's broadcast address) for an IPv4 prefix shorter than /31: the reference plugins and
 * flanneld add addresses with netlink's AddrAdd, which fills the broadcast in below /31 (RFC 3021), so
 * `ip addr` shows `inet 10.244.1.1/24 brd 10.244.1.255` on their cni0 and pods; none for /31, /32 and v6.
 */
function broadcast(cidr: string): string {
  const c = parseCidr(cidr);
  return c.ip.family === 4 && c.prefix < 31 ? " brd +" : "";
}

export function addrAdd(cidr: string, dev: string, what: string): IpCommand {
  return { line: `addr add ${cidr}${broadcast(cidr)} dev ${q(dev)}`, what };
}

/** Adds or leaves alone: no EEXIST, so a batch can carry on. */
export function addrReplace(cidr: string, dev: string, what: string): IpCommand {
  return { line: `addr replace ${cidr}${broadcast(cidr)} dev ${q(dev)}`, what };
}

export function addrDel(cidr: string, dev: string, what: string): IpCommand {
  return { line: `addr del ${cidr} dev ${q(dev)}`, what, mayFail: /Cannot assign requested address/ };
}

/**
 * The addresses on a link that stand in the way of `want`, by the reference's ensureAddr rules: for IPv4
 * any other address conflicts; for IPv6 only an overlapping one does (non-overlapping v6 prefixes
 * coexist). An identical address is not a conflict.
 */
export function conflictingAddrs(existing: AddrRecord[], want: string): AddrRecord[] {
  const w = parseCidr(want);
  return existing.filter((a) => {
    if (a.family !== familyName(w.ip.family)) return false;
    const have = addrOf(a);
    if (cidrEqual(have, w)) return false;
    return w.ip.family === 4 || overlaps(have, w);
  });
}

/** Whether the link already has exactly `want`. */
export function hasAddr(existing: AddrRecord[], want: string): boolean {
  const w = parseCidr(want);
  return existing.some((a) => cidrEqual(addrOf(a), w));
}
