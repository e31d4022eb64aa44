import { type IpCommand, q } from "./ip.js";
import { ipWord, macWord } from "./mac.js";

/**
 * Neighbours (ARP / NDP entries): `ip neigh` lines for a batch and the `ip -j neigh show` records.
 *
 * Careful in batches: ip ends the whole batch (exit 2, no "Command failed" line, even under -force) when
 * the kernel refuses a `neigh` change, so validate words here and put deletions, which can race with the
 * kernel, last.
 */

export interface Neigh {
  ip: string;
  mac: string;
  dev: string;
}

export interface NeighRecord {
  dst: string;
  /** Absent when the read was filtered by device. */
  dev?: string;
  lladdr?: string;
  /** "PERMANENT", "REACHABLE", "STALE", "FAILED", "INCOMPLETE", "NOARP"... */
  state?: string[];
}

/** `neigh replace <ip> lladdr <mac> dev <dev> nud permanent`: flanneld's static entry for a remote VTEP. */
export function neighReplace(
  n: Neigh,
  what = `set neighbour ${n.ip} lladdr ${n.mac} on ${n.dev}`,
): IpCommand {
  return {
    line: `neigh replace ${ipWord(n.ip)} lladdr ${macWord(n.mac)} dev ${q(n.dev)} nud permanent`,
    what,
  };
}

export function neighDel(
  n: Pick<Neigh, "ip" | "dev">,
  what = `delete neighbour ${n.ip} on ${n.dev}`,
): IpCommand {
  return { line: `neigh del ${ipWord(n.ip)} dev ${q(n.dev)}`, what };
}

/**
 * Every neighbour of every device and family. Unfiltered on purpose: `neigh show dev X` for a missing
 * device fails; filter the records with neighsOn.
 */
export function neighShow(what = "list neighbours"): IpCommand {
  return { line: "neigh show", what, read: true };
}

export function neighsOn(read: unknown[] | undefined, dev: string): NeighRecord[] {
  return ((read ?? []) as NeighRecord[]).filter((n) => n.dev === dev);
}

export function isPermanent(n: NeighRecord): boolean {
  return n.state?.includes("PERMANENT") ?? false;
}
