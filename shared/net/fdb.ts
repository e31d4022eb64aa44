import { type IpCommand, q } from "./ip.js";
import { ipWord, macWord, normalizeMac } from "./mac.js";

/**
 * Forwarding database entries of a vxlan device: which remote VTEP (underlay address) a MAC lives
 * behind. `bridge fdb` lines for a batch run by bridgeBatch (bridge-batch.ts), and the
 * `bridge -j fdb show` records.
 */

export interface FdbEntry {
  mac: string;
  dev: string;
  /** The remote VTEP's underlay address. */
  dst: string;
}

export interface FdbRecord {
  mac: string;
  /** The remote (vxlan); absent for a local entry. */
  dst?: string;
  /** Absent when the read was filtered by device. */
  ifname?: string;
  flags?: string[];
  state?: string;
}

const entryWords = (e: FdbEntry) => `${macWord(e.mac)} dev ${q(e.dev)} dst ${ipWord(e.dst)} self`;

/** `fdb append`: one more remote for the MAC (vxlan keeps a list of remotes per MAC). */
export function fdbAppend(e: FdbEntry, what = `append fdb entry ${e.mac} dst ${e.dst}`): IpCommand {
  return { line: `fdb append ${entryWords(e)} permanent`, what };
}

/**
 * `fdb replace`: the MAC's remote becomes `dst` (NLM_F_REPLACE, flanneld's NeighSet with NTF_SELF and
 * NUD_PERMANENT).
 */
export function fdbReplace(e: FdbEntry, what = `set fdb entry ${e.mac} dst ${e.dst}`): IpCommand {
  return { line: `fdb replace ${entryWords(e)} permanent`, what };
}

/** Removes the one remote `dst` of the MAC; an entry already gone is fine. */
export function fdbDel(e: FdbEntry, what = `delete fdb entry ${e.mac} dst ${e.dst}`): IpCommand {
  return { line: `fdb del ${entryWords(e)}`, what, mayFail: /No such file or directory/ };
}

/** A device's entries; the answer is undefined when the device does not exist (the batch runs -force). */
export function fdbShow(dev: string, what = `list fdb entries of ${dev}`): IpCommand {
  return { line: `fdb show dev ${q(dev)}`, what, read: true, mayFail: /Cannot find device|does not exist/ };
}

/** The entries of a read that point at a remote VTEP, as (MAC, dst) pairs. */
export function fdbRemotes(
  read: unknown[] | undefined,
): Array<{ mac: string; dst: string; permanent: boolean }> {
  const out: Array<{ mac: string; dst: string; permanent: boolean }> = [];
  for (const r of (read ?? []) as FdbRecord[]) {
    const mac = normalizeMac(r.mac);
    if (!mac || !r.dst) continue;
    out.push({ mac, dst: r.dst, permanent: r.state === "permanent" });
  }
  return out;
}
