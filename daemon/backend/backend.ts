import type { Logger } from "../../shared/log.js";
import type { Lease, LeaseAttrs } from "../lease.js";
import type { NetworkConfig } from "../net-conf.js";

/** The underlay interface the node's traffic to other nodes leaves by (flanneld's ExternalInterface). */
export interface ExternalInterface {
  name: string;
  index: number;
  mtu: number;
  /** The interface's own IPv4 / IPv6 address. */
  ifaceAddr?: string;
  ifaceV6Addr?: string;
  /** The address advertised to other nodes (--public-ip; the interface address by default). */
  publicIp?: string;
  publicIpv6?: string;
}

export interface BackendContext {
  config: NetworkConfig;
  ext: ExternalInterface;
  /** What this node advertised before (from the store or the device), so a restart keeps its VTEP MAC. */
  previous?: LeaseAttrs;
  log: Logger;
}

/**
 * A way of carrying pod traffic between nodes: one implementation per file in this folder (`vxlan.ts`,
 * `host-gw.ts`), as flannel has one folder per backend. The daemon calls `prepare` once before it
 * leases, then `reconcile` after every lease change and periodically; `reconcile` is level-triggered and
 * idempotent: it reads what is in the kernel, changes only what differs from the leases, and removes
 * what no current lease backs (weft's routes carry `proto` WEFT_ROUTE_PROTO so that is safe).
 */
export interface Backend {
  readonly type: "vxlan" | "host-gw";
  /**
   * Checks and creates the node's own devices (vxlan: `flannel.<VNI>` with the previous MAC) and says
   * what to advertise in the lease and the MTU for subnet.env.
   */
  prepare(ctx: BackendContext): Promise<{ attrs: Omit<LeaseAttrs, "PublicIP" | "PublicIPv6">; mtu: number }>;
  /**
   * Makes the kernel match: the node's own lease (vxlan: the device's `<subnet>.0/32` address) and, per
   * remote lease of this backend type, its routes (and for vxlan its neighbour and fdb entry).
   */
  reconcile(own: Lease, remotes: Lease[]): Promise<void>;
}

/**
 * The route protocol number weft's daemon tags its routes with (`ip route ... proto 0x57`; /etc/iproute2
 * has no name for it), so a restart can remove routes no lease backs without touching anyone else's.
 */
export const WEFT_ROUTE_PROTO = 87;
