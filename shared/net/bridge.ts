import { readdirSync } from "node:fs";
import type { IpCommand } from "./ip.js";
import { q, sysAttr } from "./link.js";
import { run } from "./run.js";

/** Linux bridges and their ports: `ip link` lines for a batch and sysfs reads of the host's bridges. */

export interface BridgeCreate {
  mtu?: number;
  /** A fixed MAC, so the bridge does not take on the lowest port MAC as ports come and go. */
  mac?: string;
  vlanFiltering?: boolean;
}

export function bridgeAdd(name: string, opts: BridgeCreate = {}): IpCommand {
  const parts = [`link add ${q(name)}`];
  if (opts.mtu) parts.push(`mtu ${opts.mtu}`);
  if (opts.mac) parts.push(`address ${opts.mac}`);
  parts.push("type bridge");
  if (opts.vlanFiltering) parts.push("vlan_filtering 1");
  return { line: parts.join(" "), what: `could not add ${JSON.stringify(name)}` };
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

/** Names of the ports attached to a host bridge (empty when it has none or does not exist). */
export function bridgePorts(bridge: string): string[] {
  try {
    return readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
}

/** Ifindexes of the ports of a host bridge, keyed by ifindex. */
export function bridgePortIndexes(bridge: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const port of bridgePorts(bridge)) {
    const idx = sysAttr(port, "ifindex");
    if (idx) out.set(Number(idx), port);
  }
  return out;
}

/** A port's hairpin flag from sysfs (`/sys/class/net/<port>/brport/hairpin_mode`). */
export function portHairpin(port: string): boolean | undefined {
  const v = sysAttr(port, "brport/hairpin_mode");
  return v === undefined ? undefined : v === "1";
}

export interface PortVlans {
  /** Access VLAN: added as PVID, untagged. */
  vlan?: number;
  /** Trunk VLANs: added tagged. */
  trunk?: number[];
  /** Remove the VLAN(s) the port got by default first. */
  removeDefault?: boolean;
}

/**
 * VLANs of a bridge port, through one `bridge -batch -` (ip has no VLAN filter commands). The default
 * VLAN a new port gets is the bridge's default_pvid.
 */
export async function setPortVlans(bridge: string, port: string, v: PortVlans): Promise<void> {
  const lines: string[] = [];
  if (v.removeDefault) {
    const pvid = Number(sysAttr(bridge, "bridge/default_pvid") ?? "1");
    if (pvid > 0) lines.push(`vlan del dev ${q(port)} vid ${pvid}`);
  }
  if (v.vlan) lines.push(`vlan add dev ${q(port)} vid ${v.vlan} pvid untagged`);
  for (const id of v.trunk ?? []) lines.push(`vlan add dev ${q(port)} vid ${id}`);
  if (lines.length === 0) return;
  try {
    await run("bridge", ["-batch", "-"], { input: `${lines.join("\n")}\n` });
  } catch (err) {
    const msg = (err as { result?: { stderr?: string } }).result?.stderr?.trim() || (err as Error).message;
    throw new Error(`failed to setup vlan tag on interface ${JSON.stringify(port)}: ${msg}`);
  }
}
