import { readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../shared/fs/atomic-file.js";
import { goFileError } from "../../shared/fs/go-errors.js";

/**
 * What portmap's ADD installed for one attachment, kept so that its DEL need not read the nat tables.
 * Most pods have no hostPort, and their DEL (which carries no mappings either) would otherwise read
 * iptables-save and ip6tables-save (or list both nft tables) only to find nothing; a pod with hostPorts
 * gets a DEL without its mappings and addresses from libcni below cniVersion 0.4.0 (no prevResult on DEL,
 * as with kube-flannel's 0.3.1 list), which would read both tables to find its chain.
 *
 * One file per attachment (network, container ID, ifname: libcni's key) in a weft-owned directory of
 * /run. /run is emptied at boot, like the kernel's rules; a DEL that finds no record (after a reboot, a
 * pod the reference added, a node that ran weft before this record existed, a record it cannot read)
 * reads the tables as before. A record written by an ADD in this network namespace says either "none"
 * (the DEL skips the tables) or "rules", then with the teardown the backend planned from the ADD's own
 * rules (iptables: per family, the restore lines that remove exactly them, and the UDP host ports for the
 * conntrack flush), which the DEL applies without a read; a teardown that no longer matches the tables
 * fails as a whole and the DEL reads that family. A record of "rules" without a teardown (a weft before
 * it, nft, a repeated ADD over one) reads the tables. Rules another implementation made for an
 * attachment weft recorded are GC's to find.
 *
 * ADD with mappings writes "rules" before it installs anything (so a crash in between still finds the
 * rules on DEL), and a later ADD without mappings keeps that record rather than claiming "none".
 */

/** Where the records live (0700, root's, as /run/weft, weftd's socket directory). */
export const RECORD_DIR = "/run/weft/portmap";

export type Installed = "none" | "rules";

/** One address family's part of a teardown. */
export interface FamilyTeardown {
  /** The lines of one iptables-restore --noflush transaction of the nat table that remove the rules. */
  restore: string[];
  /** The host ports of the UDP DNAT rules it removes (their conntrack entries are flushed). */
  udp: number[];
}

/** How a DEL removes what the ADD installed without reading the tables (only iptables plans one). */
export interface Teardown {
  backend: "iptables";
  families: { 4?: FamilyTeardown; 6?: FamilyTeardown };
}

/** What a record says. */
export interface RecordState {
  installed: Installed;
  /** Only with "rules", and only when the ADD that wrote it knew every rule of the attachment. */
  teardown?: Teardown;
}

export interface AttachmentKey {
  network: string;
  containerId: string;
  ifname: string;
}

interface RecordDoc extends AttachmentKey {
  /** The inode of the network namespace whose nat tables the record speaks of. */
  netns: number;
  installed: Installed;
  teardown?: Teardown;
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
export function readRecordState(key: AttachmentKey, dir = RECORD_DIR): RecordState | undefined {
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
  if (doc.installed === "none") return { installed: "none" };
  if (doc.installed !== "rules") return undefined;
  // A teardown that is not whole is no teardown: the DEL reads the tables, as for a record without one.
  const teardown = teardownOf(doc.teardown);
  return teardown ? { installed: "rules", teardown } : { installed: "rules" };
}

/** What the attachment's record says was installed (readRecordState without the teardown). */
export function readRecord(key: AttachmentKey, dir = RECORD_DIR): Installed | undefined {
  return readRecordState(key, dir)?.installed;
}

const isPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;

/**
 * `t` if it has a teardown's shape: the known backend, at least one family, each with restore lines (one
 * line each: a newline would start another line of the transaction) and ports.
 */
function teardownOf(t: unknown): Teardown | undefined {
  if (typeof t !== "object" || t === null) return undefined;
  const { backend, families } = t as Partial<Teardown>;
  if (backend !== "iptables" || typeof families !== "object" || families === null) return undefined;
  const keys = Object.keys(families);
  if (keys.length === 0 || keys.some((k) => k !== "4" && k !== "6")) return undefined;
  for (const f of Object.values(families) as unknown[]) {
    const { restore, udp } = (f ?? {}) as Partial<FamilyTeardown>;
    if (!Array.isArray(restore) || restore.length === 0 || !Array.isArray(udp)) return undefined;
    if (restore.some((l) => typeof l !== "string" || /[\r\n]/.test(l))) return undefined;
    if (!udp.every(isPort)) return undefined;
  }
  return { backend, families };
}

/** Writes the attachment's record. Throws when it cannot (the caller decides whether that matters). */
export function writeRecord(key: AttachmentKey, state: Installed | RecordState, dir = RECORD_DIR): void {
  const netns = ownNetns();
  if (netns === undefined) throw new Error("cannot read /proc/self/ns/net");
  const { installed, teardown } =
    typeof state === "string" ? { installed: state, teardown: undefined } : state;
  const doc: RecordDoc = {
    ...key,
    netns,
    installed,
    ...(installed === "rules" && teardown ? { teardown } : {}),
  };
  // Not fsynced: a record speaks of this boot's nat tables and pods, and /run is emptied at boot (where
  // /run is on disk and the machine crashed, a record left is one of a container of the previous boot).
  // The file's and the directory's fsyncs were most of a served portmap ADD without mappings there.
  writeFileAtomic(recordPath(key, dir), `${JSON.stringify(doc)}\n`, {
    mode: 0o600,
    dirMode: 0o700,
    durable: false,
  });
}

/**
 * The teardown the record of an ADD installing `next` may carry, given what the attachment's record said
 * before (`prior`). A repeated ADD replaces the rules of its own families only, so the earlier ADD's
 * teardown of another family stays; a record of rules without a teardown (a weft before it, another
 * backend) leaves the rules unknown, and so does this ADD's.
 */
export function teardownAfter(
  prior: RecordState | undefined,
  next: Teardown | undefined,
): Teardown | undefined {
  if (!next || !prior || prior.installed === "none") return next;
  if (!prior.teardown || prior.teardown.backend !== next.backend) return undefined;
  return { backend: next.backend, families: { ...prior.teardown.families, ...next.families } };
}

/** Removes the attachment's record (a missing one is fine), and its network's directory once empty. */
export function removeRecord(key: AttachmentKey, dir = RECORD_DIR): void {
  const path = recordPath(key, dir);
  try {
    rmSync(path, { force: true });
  } catch (err) {
    // A name too long for the file system names no record: no ADD could have written it.
    if ((err as NodeJS.ErrnoException).code !== "ENAMETOOLONG") throw goFileError(err, path, "remove");
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
 * Before an ADD installs rules: the record says "rules", with `teardown` when the DEL may use it. When it
 * cannot be written, the ADD may still go on unless a record saying "none" stays behind (it would make
 * the DEL skip the rules about to be made).
 */
export function recordRules(key: AttachmentKey, teardown?: Teardown, dir = RECORD_DIR): void {
  try {
    writeRecord(key, teardown ? { installed: "rules", teardown } : "rules", dir);
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
