/**
 * flannel's network config (net-conf.json, or `<prefix>/config` in etcd) after parsing, defaults and
 * flannel's validation (pkg/subnet/config.go ParseConfig + CheckNetworkConfig). Subnets and addresses are
 * canonical text (Go's forms).
 */
export interface NetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** `Network`, e.g. "10.244.0.0/16" (when enableIPv4). */
  network?: string;
  /** `SubnetLen`, defaulted as flannel does (24 for a /22 or larger network, else prefix + 2). */
  subnetLen: number;
  /** `SubnetMin` / `SubnetMax`: network addresses of the first and last subnet a node may lease. */
  subnetMin?: string;
  subnetMax?: string;
  ipv6Network?: string;
  ipv6SubnetLen: number;
  ipv6SubnetMin?: string;
  ipv6SubnetMax?: string;
  backend: BackendConfig;
  /** The document as read, for logs ("Found network config - Backend type: vxlan"). */
  raw: string;
}

export interface BackendConfig {
  type: "vxlan" | "host-gw";
  /** vxlan: `VNI` (default 1), `Port` (0 = the kernel's 8472), `DirectRouting`, `MTU` (0 = underlay's). */
  vni: number;
  port: number;
  directRouting: boolean;
  mtu: number;
}
