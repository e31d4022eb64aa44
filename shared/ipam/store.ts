import {
  closeSync,
  constants,
  type Dirent,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { validateContainerId, validateNetworkName } from "../cni/env.js";
import { goFileError } from "../fs/go-errors.js";
import { formatIp, type IP, tryParseIp } from "../net/ipaddr.js";

/**
 * The reference's on-disk store (backend/disk), byte for byte: `<dataDir>/<network>/<ip>` holds
 * `<containerID>\r\n<ifname>` (no trailing newline, mode 0600), `last_reserved_ip.<set index>` holds the
 * bare address, and `lock` is the empty file both implementations flock. Older host-local versions wrote
 * the container ID alone ("legacy" files); those still match on release and lookup.
 *
 * Unlike the reference, a reservation is written to a temp file, fsynced and then link(2)ed to its final
 * name: link fails with EEXIST exactly where the reference's O_EXCL create does, so creation stays the
 * arbiter between racing writers, and a crash can no longer leave an empty reservation file behind.
 * Files that are empty or hold something no writer produces are treated as free (section 6.1 of the
 * anchors: such files leak addresses forever otherwise).
 */

export const LOCK_FILE = "lock";
export const LAST_RESERVED_PREFIX = "last_reserved_ip.";
/** Temp files start with a dot and never parse as an address, so no reader takes them for a reservation. */
export const TEMP_PREFIX = ".weft-tmp-";
const LINE_BREAK = "\r\n";

/** Who holds a reservation, from its file content; undefined when the content is not a reservation. */
export interface Owner {
  containerId: string;
  /** Absent in legacy (ID-only) files. */
  ifname?: string;
}

export interface Reservation {
  /** The file name (the address as the reference prints it). */
  name: string;
  /** The address, when the name is one. */
  ip: IP | undefined;
  /** The content with surrounding whitespace trimmed, as the reference compares it. */
  content: string;
  owner: Owner | undefined;
}

let tempSeq = 0;

/**
 * Parses reservation content. Only what a host-local ever wrote counts: an ID, optionally a line break and
 * an interface name, without control characters (a crashed write leaves nothing or NUL blocks).
 */
export function parseOwner(content: string): Owner | undefined {
  const text = content.trim();
  if (text === "") return undefined;
  const parts = text.split(LINE_BREAK);
  if (parts.length > 2 || parts.some((p) => p === "" || /[\u0000-\u001f\u007f]/.test(p))) return undefined;
  return parts.length === 1 ? { containerId: parts[0]! } : { containerId: parts[0]!, ifname: parts[1]! };
}

/** The exact (trimmed) contents the reference matches on: `<id>\r\n<ifname>`, then the legacy `<id>`. */
export function ownerKeys(containerId: string, ifname: string): { exact: string; legacy: string } {
  const id = containerId.trim();
  return { exact: `${id}${LINE_BREAK}${ifname}`, legacy: id };
}

/**
 * `<dataDir>/<network>`, refusing any network name that would leave dataDir (`..`, `/`, or anything
 * outside the characters CNI allows in a network name).
 */
export function networkDir(dataDir: string, network: string): string {
  validateNetworkName(network);
  const base = resolve(dataDir);
  const dir = resolve(base, network);
  if (dirname(dir) !== base) throw new Error(`network name ${JSON.stringify(network)} leaves ${dataDir}`);
  return dir;
}

export class ReservationStore {
  readonly lockPath: string;

  private constructor(readonly dir: string) {
    this.lockPath = join(dir, LOCK_FILE);
  }

  /** Opens (and, unless `create` is false, creates with mode 0755 like MkdirAll) the network directory. */
  static open(dataDir: string, network: string, create = true): ReservationStore {
    const dir = networkDir(dataDir, network);
    if (create) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o755 });
      } catch (err) {
        throw goFileError(err, dir, "mkdir");
      }
    }
    return new ReservationStore(dir);
  }

  /**
   * Every file in the network directory but the lock, the last_reserved_ip files and temp files, by name.
   * `locked`: the caller holds the lock, so any temp file is one a writer that died left (a live writer
   * holds the lock from its temp file to the link), and it is removed on the way.
   */
  scan(opts: { locked?: boolean } = {}): Reservation[] {
    let entries: Dirent[];
    try {
      entries = readdirSync(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw goFileError(err, this.dir);
    }
    const out: Reservation[] = [];
    for (const e of entries) {
      if (opts.locked && e.name.startsWith(TEMP_PREFIX)) unlinkQuiet(join(this.dir, e.name));
      if (!e.isFile() || isBookkeeping(e.name)) continue;
      let content: string;
      try {
        content = readFileSync(join(this.dir, e.name), "utf8").trim();
      } catch {
        continue; // the reference skips files it cannot read
      }
      out.push({ name: e.name, ip: tryParseIp(e.name), content, owner: parseOwner(content) });
    }
    // filepath.Walk visits names in lexical order; keep that so "first match" means the same.
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Reserves `ip` for the container: true when the file was created, false when it was already taken.
   * An existing file that does not hold a reservation is reclaimed. Then `last_reserved_ip.<rangeId>`
   * is rewritten, as the reference does on every reservation (requested addresses included).
   * Call with the lock held.
   */
  reserve(
    containerId: string,
    ifname: string,
    ip: IP,
    rangeId: number,
    onReclaim?: (r: string) => void,
  ): boolean {
    validateContainerId(containerId);
    const name = formatIp(ip);
    const path = join(this.dir, name);
    const tmp = this.writeTemp(ownerKeys(containerId, ifname).exact);
    try {
      if (!createExclusive(tmp, path)) {
        if (!this.reclaimIfNotReservation(path, onReclaim)) return false;
        if (!createExclusive(tmp, path)) return false;
      }
    } finally {
      unlinkQuiet(tmp);
    }
    try {
      this.writeLastReserved(rangeId, name);
    } catch (err) {
      unlinkQuiet(path);
      throw err;
    }
    return true;
  }

  /** The address in `last_reserved_ip.<rangeId>`, parsed as strictly as Go's net.ParseIP. */
  lastReservedIp(rangeId: number): IP | undefined {
    try {
      return tryParseIp(readFileSync(join(this.dir, `${LAST_RESERVED_PREFIX}${rangeId}`), "utf8"));
    } catch {
      return undefined;
    }
  }

  /** Removes a file of the network directory; false when it was already gone or could not go. */
  remove(name: string): boolean {
    if (name.includes("/") || name === "." || name === "..") throw new Error(`bad reservation name ${name}`);
    try {
      unlinkSync(join(this.dir, name));
      return true;
    } catch {
      return false;
    }
  }

  private reclaimIfNotReservation(path: string, onReclaim?: (r: string) => void): boolean {
    let content: string;
    try {
      content = readFileSync(path, "utf8");
    } catch (err) {
      // Gone between link and read: free again.
      return (err as NodeJS.ErrnoException).code === "ENOENT";
    }
    if (parseOwner(content) !== undefined) return false;
    onReclaim?.(path);
    unlinkQuiet(path);
    return true;
  }

  private writeLastReserved(rangeId: number, name: string): void {
    // Only a hint for round robin: after a crash an empty or stale file just restarts the walk at
    // rangeStart, so it is renamed into place without paying for an fsync.
    const tmp = this.writeTemp(name, false);
    try {
      renameSync(tmp, join(this.dir, `${LAST_RESERVED_PREFIX}${rangeId}`));
    } catch (err) {
      unlinkQuiet(tmp);
      throw err;
    }
  }

  /** A new file with `content`, mode 0600, flushed to disk (when `durable`) before it gets a real name. */
  private writeTemp(content: string, durable = true): string {
    tempSeq += 1;
    const tmp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${Date.now().toString(36)}-${tempSeq}`);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeFileSync(fd, content);
      if (durable) fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      unlinkQuiet(tmp);
      throw err;
    }
    closeSync(fd);
    return tmp;
  }
}

function isBookkeeping(name: string): boolean {
  return name === LOCK_FILE || name.startsWith(LAST_RESERVED_PREFIX) || name.startsWith(TEMP_PREFIX);
}

/**
 * Gives `tmp`'s content the name `path` unless `path` exists. link(2) never replaces an existing name, so
 * it is as exclusive as O_EXCL; on filesystems without hard links, O_EXCL create + write + fsync.
 */
function createExclusive(tmp: string, path: string): boolean {
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeFileSync(fd, readFileSync(tmp));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkQuiet(path);
    throw err;
  }
  closeSync(fd);
  return true;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
