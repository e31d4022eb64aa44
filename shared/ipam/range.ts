import {
  bitsOf,
  type Cidr,
  compareIp,
  contains,
  formatIp,
  type IP,
  ipEqual,
  lastOf,
  networkOf,
  nextIp,
} from "../net/ipaddr.js";

/** One range as written in the config, already parsed (see config.ts for the JSON side). */
export interface RangeInput {
  subnet?: Cidr | undefined;
  rangeStart?: IP | undefined;
  rangeEnd?: IP | undefined;
  gateway?: IP | undefined;
}

/** A canonical range: every field filled in and checked, as Range.Canonicalize leaves it. */
export interface Range {
  network: IP;
  prefix: number;
  rangeStart: IP;
  rangeEnd: IP;
  gateway: IP;
}

export function subnetString(r: Pick<Range, "network" | "prefix">): string {
  return `${formatIp(r.network)}/${r.prefix}`;
}

/** The reference's Range.String(): `<rangeStart>-<rangeEnd>`. */
export function rangeString(r: Range): string {
  return `${formatIp(r.rangeStart)}-${formatIp(r.rangeEnd)}`;
}

/**
 * Range.Contains: same family, inside the subnet and between rangeStart and rangeEnd (each bound only when
 * set, so it also serves while a range is being canonicalised).
 */
function within(network: IP, prefix: number, start: IP | undefined, end: IP | undefined, addr: IP): boolean {
  if (!contains({ ip: network, prefix }, addr)) return false;
  // The reference compares the bounds as plain integers (ip.Cmp), family aside.
  if (start && addr.value < start.value) return false;
  if (end && addr.value > end.value) return false;
  return true;
}

export function rangeContains(r: Range, addr: IP): boolean {
  return within(r.network, r.prefix, r.rangeStart, r.rangeEnd, addr);
}

export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.network.family !== b.network.family) return false;
  return (
    rangeContains(a, b.rangeStart) ||
    rangeContains(a, b.rangeEnd) ||
    rangeContains(b, a.rangeStart) ||
    rangeContains(b, a.rangeEnd)
  );
}

/**
 * Range.Canonicalize: rejects subnets with fewer than two host bits and subnets with host bits set,
 * defaults the gateway and rangeStart to network+1 (the iterator skips the gateway) and rangeEnd to the
 * last address (the broadcast minus one for IPv4, the very last address for IPv6). Errors are the
 * reference's words; the caller prefixes `invalid range set <n>: `.
 */
export function canonicalizeRange(input: RangeInput): Range {
  const subnet = input.subnet;
  if (!subnet) throw new Error("IP <nil> not v4 nor v6");
  const maskFamily = subnet.maskFamily ?? subnet.ip.family;
  const masklen = bitsOf(maskFamily);
  if (subnet.prefix > masklen - 2) {
    throw new Error(`Network ${formatIp(subnet.ip)}/${subnet.prefix} too small to allocate from`);
  }
  if (subnet.ip.family !== maskFamily) throw new Error("IPNet IP and Mask version mismatch");
  const network = networkOf(subnet).ip;
  if (!ipEqual(network, subnet.ip)) {
    throw new Error(
      `Network has host bits set. For a subnet mask of length ${subnet.prefix} the network address is ${formatIp(network)}`,
    );
  }
  const prefix = subnet.prefix;
  const gateway = input.gateway ?? nextIp(network);
  const net = `${formatIp(network)}/${prefix}`;

  let rangeStart = input.rangeStart;
  if (rangeStart) {
    // As in the reference, a given rangeEnd already bounds this check.
    if (!within(network, prefix, rangeStart, input.rangeEnd, rangeStart)) {
      throw new Error(`RangeStart ${formatIp(rangeStart)} not in network ${net}`);
    }
  } else {
    rangeStart = nextIp(network);
  }

  let rangeEnd = input.rangeEnd;
  if (rangeEnd) {
    if (!within(network, prefix, rangeStart, rangeEnd, rangeEnd)) {
      throw new Error(`RangeEnd ${formatIp(rangeEnd)} not in network ${net}`);
    }
  } else {
    const last = lastOf({ ip: network, prefix });
    rangeEnd = network.family === 4 ? { family: 4, value: last.value - 1n } : last;
  }
  return { network, prefix, rangeStart, rangeEnd, gateway };
}

/** How many addresses the iterator can hand out from this range: all of it but its own gateway. */
export function rangeSize(r: Range): bigint {
  const n = r.rangeEnd.value - r.rangeStart.value + 1n;
  const gwInside = compareIp(r.gateway, r.rangeStart) >= 0 && compareIp(r.gateway, r.rangeEnd) <= 0;
  return gwInside && r.gateway.family === r.network.family ? n - 1n : n;
}
