/**
 * A node's lease on a pod subnet, in flanneld's shapes: the store key (`pkg/subnet` MakeSubnetKey) and
 * the value JSON (`pkg/lease` LeaseAttrs), so weft and flanneld nodes can share one etcd and each read
 * the other's leases.
 */

/** The lease value, field for field as flanneld marshals lease.LeaseAttrs (Go struct order). */
export interface LeaseAttrs {
  /** The node's public IPv4 (the underlay address other nodes reach it on). */
  PublicIP: string;
  /** Its public IPv6, or null (flanneld always writes the key). */
  PublicIPv6: string | null;
  /** "vxlan" | "host-gw" | ...; omitted when empty. */
  BackendType?: string;
  /** Backend data, e.g. vxlan `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}`; omitted when empty. */
  BackendData?: unknown;
  BackendV6Data?: unknown;
}

export interface Lease {
  /** The IPv4 pod subnet, canonical CIDR ("10.244.3.0/24"), or undefined on an IPv6-only lease. */
  subnet?: string;
  /** The IPv6 pod subnet, canonical CIDR ("fc00:0:0:22::/64" in Go's text), if any. */
  ipv6Subnet?: string;
  attrs: LeaseAttrs;
  /** When the store lets the lease go (ms since the epoch); undefined for a reservation (no TTL). */
  expiration?: number;
}

/** Key of a lease under `<prefix>/subnets/`: `10.5.34.0-24`, or `10.5.34.0-24&fc00:0:0:22::-64`. */
export function subnetKey(lease: Pick<Lease, "subnet" | "ipv6Subnet">): string {
  if (!lease.subnet) throw new Error("a lease key needs an IPv4 subnet (flanneld's key format requires one)");
  const v4 = lease.subnet.replace("/", "-");
  return lease.ipv6Subnet ? `${v4}&${lease.ipv6Subnet.replace("/", "-")}` : v4;
}

// flanneld's subnetRegex, anchored at the end only, as flanneld matches it.
const KEY = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/** The subnets a key names, or undefined for a key flanneld would skip. */
export function parseSubnetKey(key: string): Pick<Lease, "subnet" | "ipv6Subnet"> | undefined {
  const m = KEY.exec(key);
  if (!m) return undefined;
  const out: Pick<Lease, "subnet" | "ipv6Subnet"> = { subnet: `${m[1]}/${m[2]}` };
  if (m[3] !== undefined) out.ipv6Subnet = `${m[3]}/${m[4]}`;
  return out;
}

/** The value bytes flanneld writes: keys in LeaseAttrs order, empty backend fields left out. */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  const out: Record<string, unknown> = { PublicIP: a.PublicIP, PublicIPv6: a.PublicIPv6 ?? null };
  if (a.BackendType) out.BackendType = a.BackendType;
  if (a.BackendData !== undefined && a.BackendData !== null) out.BackendData = a.BackendData;
  if (a.BackendV6Data !== undefined && a.BackendV6Data !== null) out.BackendV6Data = a.BackendV6Data;
  return JSON.stringify(out);
}
