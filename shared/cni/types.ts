/**
 * The CNI documents, field for field as the spec (0.1.0 .. 1.1.0) and the Go `types` packages define them.
 * Optional fields are optional here; unknown config keys are kept by the index signature.
 */

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Route {
  dst: string;
  gw?: string;
  // 1.1.0 additions
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Interface {
  name: string;
  mac?: string;
  sandbox?: string;
  // 1.1.0 additions
  mtu?: number;
  socketPath?: string;
  pciID?: string;
}

/** ips[] entry; `version` exists only in 0.3.x/0.4.0 results, `interface` is an index into interfaces. */
export interface IPConfig {
  version?: "4" | "6";
  interface?: number;
  address: string;
  gateway?: string;
}

/** 0.3.0 .. 1.1.0 result. */
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

/** 0.1.0 / 0.2.0 per-family block. */
export interface IPv020 {
  ip: string;
  gateway?: string;
  routes?: Array<{ dst: string; gw?: string }>;
}

export interface Result020 {
  cniVersion: string;
  ip4?: IPv020;
  ip6?: IPv020;
  dns?: DNS;
}

export type AnyResult = Result | Result020;

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

export interface IPRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** runtimeConfig keys weft's plugins read (CONVENTIONS.md capabilities). */
export interface RuntimeConfig {
  portMappings?: PortMapping[];
  ipRanges?: IPRange[][];
  ips?: string[];
  mac?: string;
  [key: string]: unknown;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

/** The network configuration every plugin receives on stdin. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  capabilities?: Record<string, boolean>;
  ipam?: { type?: string; [key: string]: unknown };
  dns?: DNS;
  args?: { cni?: { ips?: string[]; [key: string]: unknown }; [key: string]: unknown };
  runtimeConfig?: RuntimeConfig;
  prevResult?: Record<string, unknown>;
  "cni.dev/valid-attachments"?: Attachment[];
  "cni.dev/attachments"?: Attachment[];
  [key: string]: unknown;
}

/** VERSION verb output. */
export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}
