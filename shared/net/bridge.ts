import { IpBatchError, type IpCommand, ipBatch, q } from "./ip.js";
import type { LinkRecord } from "./link.js";
import { run } from "./run.js";

/** Linux bridges and their ports: `ip link` lines for a batch, and reads of bridges and ports through ip. */

export interface BridgeCreate {
  mtu?: number;
  /** A fixed MAC, so the bridge does not take on the lowest port MAC as ports come and go. */
  mac?: string;
  vlanFiltering?: boolean;
}

export function bridgeAdd(name: string, opts: BridgeCreate = {}): IpCommand {
  // `name` keeps a bridge called "mtu" or "up" from being read as a keyword.
  const parts = [`link add name ${q(name)}`];
  if (opts.mtu) parts.push(`mtu ${opts.mtu}`);
  if (opts.mac) parts.push(`address ${opts.mac}`);
  parts.push("type bridge");
  if (opts.vlanFiltering) parts.push("vlan_filtering 1");
  return { line: parts.join(" "), what: `could not add ${JSON.stringify(name)}` };
}

/**
 * Every bridge with its addresses (`-details` adds the kind and bridge options). A read that succeeds
 * whether or not a given bridge exists, so it can open a dialog (ip.ts) whose answer decides the rest.
 */
export const bridgesShow = (): IpCommand => ({
  line: "addr show type bridge",
  what: "could not list the bridges",
  read: true,
});

/**
 * The ports of a bridge with their addresses. Only for a bridge known to exist: ip exits at once (no
 * -force saves it) when the master is unknown.
 */
export const bridgePortsShow = (bridge: string): IpCommand => ({
  line: `addr show master ${q(bridge)}`,
  what: `could not list the ports of ${JSON.stringify(bridge)}`,
  read: true,
});

/** The ports of a bridge through one ip process (for rare paths); none when the bridge does not exist. */
export async function readBridgePorts(bridge: string): Promise<LinkRecord[]> {
  try {
    return ((await ipBatch([bridgePortsShow(bridge)], { details: true }))[0] ?? []) as LinkRecord[];
  } catch (err) {
    if (err instanceof IpBatchError && /does not exist/.test(err.reason)) return [];
    throw err;
  }
}

/** The VLAN a new port of `bridge` gets (its default_pvid; 1 when the kernel reports none). */
export function defaultPvid(bridge: LinkRecord | undefined): number {
  return bridge?.linkinfo?.info_data?.vlan_default_pvid ?? 1;
}

export interface PortFlags {
  hairpin: boolean;
  isolated: boolean;
}

/** Bridge-port flags of a link that is a port (`ip link set ... type bridge_slave`). */
export function bridgePortSet(port: string, flags: PortFlags): IpCommand {
  return {
    line: `link set dev ${q(port)} type bridge_slave hairpin ${flags.hairpin ? "on" : "off"} isolated ${flags.isolated ? "on" : "off"}`,
    what: `failed to setup hairpin mode for ${port}`,
  };
}

export interface PortVlans {
  /** Access VLAN: added as PVID, untagged. */
  vlan?: number;
  /** Trunk VLANs: added tagged. */
  trunk?: number[];
  /** Remove this VLAN (the one the port got by default, see defaultPvid) first; 0 for none. */
  removeDefault?: number;
}

/** VLANs of a bridge port, through one `bridge -batch -` (ip has no VLAN filter commands). */
export async function setPortVlans(port: string, v: PortVlans): Promise<void> {
  const lines: string[] = [];
  if (v.removeDefault) lines.push(`vlan del dev ${q(port)} vid ${v.removeDefault}`);
  if (v.vlan) lines.push(`vlan add dev ${q(port)} vid ${v.vlan} pvid untagged`);
  for (const id of v.trunk ?? []) lines.push(`vlan add dev ${q(port)} vid ${id}`);
  if (lines.length === 0) return;
  try {
    await run("bridge", ["-batch", "-"], { input: `${lines.join("\n")}\n` });
  } catch (err) {
    const msg = (err as { result?: { stderr?: string } }).result?.stderr?.trim() || (err as Error).message;
    throw new Error(`failed to setup vlan tag on interface ${JSON.stringify(port)}: ${msg}`, { cause: err });
  }
}
