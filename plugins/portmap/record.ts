import { readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../shared/fs/atomic-file.js";

/**
 * What portmap's ADD installed for one attachment, kept so that its DEL can tell "nothing" without reading
 * the nat tables. Most pods have no hostPort, and their DEL (which carries no mappings either) would
 * otherwise read iptables-save and ip6tables-save (or list both nft tables) only to find nothing.
 *
 * One file per attachment (network, container ID, ifname: libcni's key) in a weft-owned directory of
 * /run. /run is emptied at boot, like the kernel's rules; a DEL that finds no record (after a reboot, a
 * pod the reference added, a node that ran weft before this record existed, a record it cannot read)
 * reads the tables as before, and so does a DEL whose record says rules were installed. Only a record
 * that says "none", written by an ADD in this network namespace, skips the read. Rules another
 * implementation made for an attachment weft recorded as "none" are GC's to find.
 *
 * ADD with mappings writes "rules" before it installs anything (so a crash in between still reads on
 * DEL), and a later ADD without mappings keeps that record rather than claiming "none".
 */

/** Where the records live (0700, root's, as /run/weft, weftd's socket directory). */
export const RECORD_DIR = "/run/weft/portmap";

export type Installed = "none" | "rules";

export interface AttachmentKey {
  network: string;
  containerId: string;
  ifname: string;
}

interface RecordDoc extends AttachmentKey {
  /** The inode of the network namespace whose nat tables the record speaks of. */
  netns: number;
  installed: Installed;
}

/**
 * `<dir>/<network>/<containerID>:<ifname>`: skel allows no ":" in a container ID or an ifname, nor "/"
 * in a network name, so the path names one attachment only.
 */
export function recordPath(key: AttachmentKey, dir = RECORD_DIR): string {
  return join(dir, key.network, `${key.containerId}:${key.ifname}`);
}

/** The inode of this process's network namespace (the nat tables a record speaks of). */
export function ownNetns(): number | undefined {
  try {
    return statSync("/proc/self/ns/net").ino;
  } catch {
    return undefined;
  }
}

/** What the attachment's record says, or undefined (no record, unreadable, another attachment or netns). */
export function readRecord(key: AttachmentKey, dir = RECORD_DIR): Installed | undefined {
  let doc: Partial<RecordDoc>;
  try {
    doc = JSON.parse(readFileSync(recordPath(key, dir), "utf8")) as Partial<RecordDoc>;
  } catch {
    return undefined;
  }
  const netns = ownNetns();
  if (
    doc.network !== key.network ||
    doc.containerId !== key.containerId ||
    doc.ifname !== key.ifname ||
    netns === undefined ||
    doc.netns !== netns
  ) {
    return undefined;
  }
  return doc.installed === "none" || doc.installed === "rules" ? doc.installed : undefined;
}

/** Writes the attachment's record. Throws when it cannot (the caller decides whether that matters). */
export function writeRecord(key: AttachmentKey, installed: Installed, dir = RECORD_DIR): void {
  const netns = ownNetns();
  if (netns === undefined) throw new Error("cannot read /proc/self/ns/net");
  const doc: RecordDoc = { ...key, netns, installed };
  writeFileAtomic(recordPath(key, dir), `${JSON.stringify(doc)}\n`, { mode: 0o600, dirMode: 0o700 });
}

/** Removes the attachment's record (a missing one is fine), and its network's directory once empty. */
export function removeRecord(key: AttachmentKey, dir = RECORD_DIR): void {
  const path = recordPath(key, dir);
  try {
    rmSync(path, { force: true });
  } finally {
    try {
      // An ADD creating its record meanwhile fails to write it and goes on without: its DEL then reads.
      rmdirSync(dirname(path));
    } catch {
      // other records are there
    }
  }
}

/**
 * Before an ADD installs rules: the record says "rules". When it cannot be written, the ADD may still go
 * on unless a record saying "none" stays behind (it would make the DEL skip the rules about to be made).
 */
export function recordRules(key: AttachmentKey, dir = RECORD_DIR): void {
  try {
    writeRecord(key, "rules", dir);
  } catch (err) {
    try {
      removeRecord(key, dir);
    } catch {
      // checked below
    }
    if (readRecord(key, dir) === "none") {
      throw new Error(`cannot replace the record ${recordPath(key, dir)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

/**
 * The records of `network` whose attachment is not in `valid` (GC): removed, as their pods are gone.
 * Returns how many. Temporary files of a write in progress (dot names) are left alone.
 */
export function removeStaleRecords(
  network: string,
  valid: ReadonlyArray<{ containerID: string; ifname: string }>,
  dir = RECORD_DIR,
): number {
  const keep = new Set(valid.map((a) => `${a.containerID}:${a.ifname}`));
  let names: string[];
  try {
    names = readdirSync(join(dir, network));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (name.startsWith(".") || keep.has(name)) continue;
    rmSync(join(dir, network, name), { force: true });
    removed += 1;
  }
  return removed;
}

/**
 * The records of `network` written in the network namespace `netns` (default: this process's), as paths:
 * what `weft uninstall --purge` removes with the rules, and tests clean up after a node namespace.
 */
export function recordsOf(network: string, netns = ownNetns(), dir = RECORD_DIR): string[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, network));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (name.startsWith(".")) continue;
    const path = join(dir, network, name);
    try {
      const doc = JSON.parse(readFileSync(path, "utf8")) as Partial<RecordDoc>;
      if (doc.network === network && doc.netns === netns) out.push(path);
    } catch {
      // not a record, or gone meanwhile
    }
  }
  return out;
}

/** Removes these records of `network` (recordsOf), and its directory once empty. */
export function removeRecordFiles(network: string, files: string[], dir = RECORD_DIR): void {
  for (const f of files) rmSync(f, { force: true });
  try {
    rmdirSync(join(dir, network));
  } catch {
    // other namespaces' records are there, or it is gone
  }
}
