import { type FSWatcher, watch as fsWatch } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { withFileLock } from "../../shared/ipam/flock.js";
import { randomBytes } from "../../shared/net/random.js";
import { formatPrefix, tryPrefix } from "../addr.js";
import { encodeLeaseAttrs, type Lease, parseSubnetKey, subnetKey } from "../lease.js";
import { decodeLeaseValue, sameAttrs } from "./lease-value.js";
import { LeaseLostError, StoreUnavailableError, type SubnetStore } from "./store.js";

/**
 * The embedded store: a directory shared by the daemons of one machine (each may run in its own network
 * namespace; they share the file system). No server, nothing to install.
 *
 * Layout:
 * - one file per lease, named by flanneld's subnet key (`10.244.3.0-24`, `10.244.3.0-24&fc00:0:0:3::-64`);
 *   its content is flanneld's lease value (encodeLeaseAttrs: `PublicIP`, `PublicIPv6`, `BackendType`,
 *   `BackendData`) with one more member, `Expiration` (RFC 3339), the way flannel's own lease.Lease
 *   carries it; flanneld's decoder ignores it. A file without `Expiration` is a reservation: never
 *   expires, never renewed into a lease, never reclaimed (write one by hand to pin a node's subnet);
 * - `config` (optional): the network config for every daemon on the directory, like etcd's
 *   `<prefix>/config` (a net-conf file given with --net-config-path wins);
 * - `.lock`: flock(2) taken for every change other than a plain creation; `.tmp-*`: files being written.
 *
 * Why it is safe:
 * - creation is the arbiter: the complete value is written to a temp file and `link(2)`ed to the key's
 *   name, which fails if the name exists, so of two daemons racing for a subnet exactly one wins and
 *   no reader ever sees half a file;
 * - a renewal is a compare-and-swap under the lock: it rewrites (temp file + rename) only while the file
 *   still holds this node's value (same PublicIP, not expired); otherwise LeaseLostError. Removal
 *   (release, reclaiming an expired lease) also happens only under the lock after the same check, so a
 *   renewal can never overwrite a lease another node created in between;
 * - readers take no lock: every file they see is whole.
 *
 * Changes are seen through inotify (`fs.watch` on the directory, about 10 ms), with a rescan every few
 * seconds as a safety net and a timer at the next expiry (expiring makes no file system event).
 */
export interface FileStoreOptions {
  dir: string;
  /** The safety-net rescan period of watch() (default 5 s). */
  rescanMs?: number;
  /** How long a change waits for another daemon's lock before failing as unavailable (default 10 s). */
  lockTimeoutSeconds?: number;
  /** The clock (tests). */
  now?: () => number;
}

const LOCK = ".lock";
const CONFIG = "config";

interface Entry {
  name: string;
  lease?: Lease;
  /** Why the file is unusable (not JSON, no PublicIP, ...). */
  bad?: string;
}

export class FileStore implements SubnetStore {
  readonly name = "file";
  readonly description: string;
  private readonly dir: string;
  private readonly rescanMs: number;
  private readonly lockTimeout: number;
  private readonly now: () => number;
  private readonly stops = new Set<() => Promise<void>>();
  private readonly scans = new Set<Promise<void>>();
  /** Bad files already reported, so a watch does not repeat itself every rescan. */
  private readonly reported = new Set<string>();

  constructor(o: FileStoreOptions) {
    this.dir = o.dir;
    this.description = `file ${o.dir}`;
    this.rescanMs = o.rescanMs ?? 5000;
    this.lockTimeout = o.lockTimeoutSeconds ?? 10;
    this.now = o.now ?? Date.now;
  }

  async networkConfig(): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, CONFIG), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw this.unavailable(`cannot read ${join(this.dir, CONFIG)}`, err);
    }
  }

  async list(): Promise<Lease[]> {
    const now = this.now();
    return (await this.scan()).flatMap((e) => (e.lease && !expired(e.lease, now) ? [e.lease] : []));
  }

  async create(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    const stored: Lease = { ...lease, expiration: this.now() + ttlMs };
    const name = subnetKey(lease);
    await this.ensureDir();
    const tmp = await this.writeTemp(name, stored);
    try {
      if (await this.linkNew(tmp, name)) return stored;
      // Held, unless by an expired lease: reclaim that one under the lock, then try once more.
      return await this.locked(async () => {
        const cur = await this.read(name);
        if (cur.lease && !expired(cur.lease, this.now())) return undefined;
        if (cur.bad) return undefined; // never clobber what we cannot read
        if (cur.lease) await this.remove(name);
        return (await this.linkNew(tmp, name)) ? stored : undefined;
      });
    } finally {
      await rm(join(this.dir, tmp), { force: true });
    }
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    const name = subnetKey(lease);
    return this.locked(async () => {
      const cur = await this.read(name);
      const mine = this.checkMine(name, lease, cur);
      // A reservation stays one: it gets this node's current attributes but never an expiration.
      const next: Lease = {
        ...lease,
        expiration: mine.expiration === undefined ? undefined : this.now() + ttlMs,
      };
      if (next.expiration === undefined && sameAttrs(mine.attrs, lease.attrs)) return mine;
      const tmp = await this.writeTemp(name, next);
      try {
        await rename(join(this.dir, tmp), join(this.dir, name));
      } catch (err) {
        await rm(join(this.dir, tmp), { force: true });
        throw this.unavailable(`cannot renew ${name}`, err);
      }
      return next;
    });
  }

  async release(lease: Lease): Promise<void> {
    const name = subnetKey(lease);
    await this.locked(async () => {
      const cur = await this.read(name);
      // An operator's reservation (no expiration) outlives the daemon that used it, as in etcd.
      if (cur.lease?.expiration === undefined) return;
      if (cur.lease.attrs.PublicIP === lease.attrs.PublicIP) await this.remove(name);
    });
  }

  watch(onLeases: (leases: Lease[]) => void, onError: (err: Error) => void): () => void {
    let stopped = false;
    let last: string | undefined;
    let running: Promise<void> | undefined;
    let again = false;
    let watcher: FSWatcher | undefined;
    let debounce: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;

    const arm = () => {
      if (watcher || stopped) return;
      try {
        watcher = fsWatch(this.dir, () => {
          clearTimeout(debounce);
          // Coalesce the bursts one change makes (temp file, link, unlink).
          debounce = setTimeout(kick, 10);
        });
        watcher.on("error", (err) => {
          watcher?.close();
          watcher = undefined;
          onError(this.unavailable(`watching ${this.dir} failed`, err));
        });
      } catch (err) {
        onError(this.unavailable(`cannot watch ${this.dir}`, err));
      }
    };

    const once = async () => {
      if (stopped) return;
      await this.ensureDir().catch(() => undefined);
      arm();
      const entries = await this.scan();
      const now = this.now();
      const leases = entries.flatMap((e) => (e.lease && !expired(e.lease, now) ? [e.lease] : []));
      for (const e of entries) {
        if (e.bad && !this.reported.has(`${e.name}:${e.bad}`)) {
          this.reported.add(`${e.name}:${e.bad}`);
          onError(new Error(`ignoring ${join(this.dir, e.name)}: ${e.bad}`));
        }
      }
      if (!stopped && entries.some((e) => e.lease && expired(e.lease, now))) await this.reclaim();
      const next = leases.map((l) => l.expiration).filter((t): t is number => t !== undefined && t > now);
      clearTimeout(expiry);
      if (next.length > 0 && !stopped) expiry = setTimeout(kick, Math.min(...next) - now + 5);
      const sig = JSON.stringify(leases);
      if (sig !== last && !stopped) {
        last = sig;
        onLeases(leases);
      }
    };

    const kick = () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      const scan = once().catch((err) => onError(err as Error));
      this.scans.add(scan);
      running = scan
        .finally(() => this.scans.delete(scan))
        .finally(() => {
          running = undefined;
          if (again) {
            again = false;
            kick();
          }
        });
    };

    const interval = setInterval(kick, this.rescanMs);
    kick();
    const stop = async () => {
      stopped = true;
      clearInterval(interval);
      clearTimeout(debounce);
      clearTimeout(expiry);
      watcher?.close();
      this.stops.delete(stop);
      await running;
    };
    this.stops.add(stop);
    return () => void stop();
  }

  /** Stops every watch and waits for the scans in progress, so nothing touches the directory afterwards. */
  async close(): Promise<void> {
    await Promise.all([...this.stops].map((stop) => stop()));
    while (this.scans.size > 0) await Promise.allSettled([...this.scans]);
  }

  // -------------------------------------------------------------------------------------------------------

  private checkMine(name: string, lease: Lease, cur: Entry): Lease {
    if (!cur.lease) throw new LeaseLostError(`lease ${name} is gone from ${this.description}`);
    if (cur.lease.attrs.PublicIP !== lease.attrs.PublicIP)
      throw new LeaseLostError(
        `lease ${name} now belongs to ${cur.lease.attrs.PublicIP}, not ${lease.attrs.PublicIP}`,
      );
    if (expired(cur.lease, this.now()))
      throw new LeaseLostError(
        `lease ${name} expired at ${new Date(cur.lease.expiration!).toISOString()} before it was renewed`,
      );
    return cur.lease;
  }

  /** Removes the expired leases still on disk (under the lock, checking each again). */
  private async reclaim(): Promise<void> {
    await this.locked(async () => {
      for (const e of await this.scan()) {
        if (e.lease && expired(e.lease, this.now())) await this.remove(e.name);
      }
    });
  }

  private async scan(): Promise<Entry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.unavailable(`cannot read ${this.dir}`, err);
    }
    const keys = names.filter(isKeyName).sort();
    const entries = await Promise.all(keys.map((n) => this.read(n)));
    return entries.filter((e) => e.lease || e.bad);
  }

  /** One lease file; a missing file is an entry with neither lease nor bad. */
  private async read(name: string): Promise<Entry> {
    let text: string;
    try {
      text = await readFile(join(this.dir, name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { name };
      throw this.unavailable(`cannot read ${join(this.dir, name)}`, err);
    }
    try {
      const v = decodeLeaseValue(text);
      const lease: Lease = { ...parseSubnetKey(name), attrs: v.attrs };
      if (v.expiration !== undefined) lease.expiration = v.expiration;
      return { name, lease };
    } catch (err) {
      return { name, bad: (err as Error).message };
    }
  }

  private async writeTemp(name: string, lease: Lease): Promise<string> {
    const tmp = `.tmp-${name}-${randomBytes(6).toString("hex")}`;
    try {
      await writeFile(join(this.dir, tmp), encodeFileValue(lease), { mode: 0o644, flag: "wx" });
    } catch (err) {
      throw this.unavailable(`cannot write in ${this.dir}`, err);
    }
    return tmp;
  }

  /** link(2): true when the name was free and is now ours. */
  private async linkNew(tmp: string, name: string): Promise<boolean> {
    try {
      await link(join(this.dir, tmp), join(this.dir, name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw this.unavailable(`cannot create ${join(this.dir, name)}`, err);
    }
  }

  private async remove(name: string): Promise<void> {
    try {
      await unlink(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        throw this.unavailable(`cannot remove ${join(this.dir, name)}`, err);
    }
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensureDir();
    let held = false;
    try {
      return await withFileLock(
        join(this.dir, LOCK),
        () => {
          held = true;
          return fn();
        },
        this.lockTimeout,
      );
    } catch (err) {
      if (held || err instanceof StoreUnavailableError) throw err;
      throw this.unavailable(`cannot lock ${join(this.dir, LOCK)}`, err);
    }
  }

  private async ensureDir(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw this.unavailable(`cannot create ${this.dir}`, err);
    }
  }

  private unavailable(what: string, cause: unknown): StoreUnavailableError {
    return new StoreUnavailableError(`${what}: ${(cause as Error).message}`, { cause });
  }
}

const expired = (l: Lease, now: number) => l.expiration !== undefined && l.expiration <= now;

/**
 * A lease file's name: exactly a canonical subnet key, in network form as Go prints it (so no temp
 * file, lock, config, nor `10.244.010.0-24`, which flanneld's parser refuses too).
 */
function isKeyName(name: string): boolean {
  const sn = parseSubnetKey(name);
  if (!sn || subnetKey(sn) !== name) return false;
  const canonical = (cidr: string | undefined) => {
    const p = tryPrefix(cidr);
    return cidr === undefined || (p !== undefined && formatPrefix(p) === cidr);
  };
  return canonical(sn.subnet) && canonical(sn.ipv6Subnet);
}

/** flanneld's value bytes plus `"Expiration":"<RFC 3339>"` for a lease with a TTL. */
export function encodeFileValue(lease: Lease): string {
  const value = encodeLeaseAttrs(lease.attrs);
  if (lease.expiration === undefined) return `${value}\n`;
  return `${value.slice(0, -1)},"Expiration":${JSON.stringify(new Date(lease.expiration).toISOString())}}\n`;
}
