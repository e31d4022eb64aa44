import type { ContainerNet, PortMapConfig } from "./config.js";
import type { Teardown } from "./record.js";

/** Host UDP ports whose DNAT rules a teardown removed, by address family (for the conntrack flush). */
export type RemovedUdpPorts = Record<4 | 6, number[]>;

/** What each backend (iptables, nftables) does for the verbs, as the reference's PortMapper interface. */
export interface PortMapper {
  readonly name: "iptables" | "nftables";
  /** Installs the mappings for each container address; one kernel transaction per family at most. */
  forwardPorts(conf: PortMapConfig, nets: ContainerNet[]): Promise<void>;
  /** Verifies the rules of each container address are present (CHECK). */
  checkPorts(conf: PortMapConfig, nets: ContainerNet[]): Promise<void>;
  /**
   * How a DEL can remove what forwardPorts(conf, nets) installs without reading the tables, kept in the
   * attachment's record (record.ts); undefined when the backend has no such way.
   */
  teardownPlan(conf: PortMapConfig, nets: ContainerNet[]): Teardown | undefined;
  /**
   * Removes everything installed for conf.name + conf.containerId; needs no mappings and no prevResult.
   * `recorded` is the record's teardown: tried first, the tables are read where it does not apply.
   */
  unforwardPorts(conf: PortMapConfig, recorded?: Teardown): Promise<RemovedUdpPorts>;
  /** Removes what was installed for attachments of this network whose container ID is not in `valid`. */
  gc(conf: PortMapConfig, valid: Set<string>): Promise<void>;
}

/** The backend's tool cannot be used on this host (missing binary, no kernel support). */
export class BackendUnusableError extends Error {
  override name = "BackendUnusableError";
}
