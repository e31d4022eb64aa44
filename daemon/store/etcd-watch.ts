import type { CallOptions } from "@grpc/grpc-js";
import type { IWatchResponse } from "etcd3";
import type { Logger } from "../../shared/log.js";
import type { Lease } from "../lease.js";
import { type EtcdClient, explain, type IKeyValue, type WatchStream } from "./etcd-client.js";
import type { LeaseExpiries } from "./etcd-expiry.js";
import { StoreUnavailableError } from "./store.js";

/**
 * The level-triggered watch of `<prefix>/subnets/`: list (with its revision), hand over the whole set,
 * then follow a Watch stream from revision+1, applying each event to the set and handing it over again.
 * It repairs itself where flanneld's watch fails (anchors 10.1 item 4, 10.2):
 * - a broken stream is reopened with backoff (100 ms doubling to 5 s, back to 100 ms after a stream that
 *   worked for a second) from the revision after the last one applied, never from the original one;
 * - a revision compacted away, a store whose revision went backwards or another cluster answering means
 *   the history cannot be replayed: it re-lists, and the new whole set is the diff consumers need;
 * - progress notifications advance the resume revision while the subnets are quiet, so a reconnect
 *   after a long calm does not land behind compaction.
 */
export interface WatchDeps {
  client: EtcdClient;
  /** The watched range's prefix ("/coreos.com/network/subnets/"). */
  prefix: string;
  /** Leases of these kvs (undefined for a key that is skipped or whose etcd lease is gone). */
  leasesOf(kvs: IKeyValue[], call: CallOptions): Promise<Array<Lease | undefined>>;
  expiries: LeaseExpiries;
  log: Logger;
}

export const WATCH_BACKOFF_MIN_MS = 100;
export const WATCH_BACKOFF_MAX_MS = 5000;
/** A stream that lived this long was working: the backoff starts over when it breaks. */
export const WATCH_STABLE_MS = 1000;

interface Entry {
  kv: IKeyValue;
  lease: Lease;
}

type Verdict = "relist" | undefined;

export function watchLeases(
  deps: WatchDeps,
  onLeases: (leases: Lease[]) => void,
  onError: (err: Error) => void,
): () => void {
  const w = new PrefixWatch(deps, onLeases, onError);
  void w.run();
  return () => w.stop();
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key: the prefix is all 0xff
}

class PrefixWatch {
  private readonly key: Buffer;
  private readonly end: Buffer;
  private readonly set = new Map<string, Entry>();
  /** The revision the next stream starts from: one past the last revision applied. */
  private since = 0;
  private clusterId = "";
  private stopped = false;
  private stream: WatchStream | undefined;
  private wake: (() => void) | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: WatchDeps,
    private readonly onLeases: (leases: Lease[]) => void,
    private readonly onError: (err: Error) => void,
  ) {
    this.key = Buffer.from(deps.prefix);
    this.end = prefixEnd(this.key);
  }

  async run(): Promise<void> {
    let backoff = WATCH_BACKOFF_MIN_MS;
    let relist = true;
    while (!this.stopped) {
      let establishedAt: number | undefined;
      const stable = () => establishedAt !== undefined && Date.now() - establishedAt >= WATCH_STABLE_MS;
      try {
        if (relist) {
          await this.list();
          relist = false;
        }
        const verdict = await this.follow(() => {
          establishedAt = Date.now();
        });
        if (this.stopped) break;
        if (verdict !== "relist") throw new Error("etcd closed the watch stream");
        relist = true;
      } catch (err) {
        if (this.stopped) break;
        if (/invalid auth token/.test(String((err as Error)?.message))) this.deps.client.invalidateAuth();
        if (stable()) backoff = WATCH_BACKOFF_MIN_MS;
        this.report(err, backoff, relist);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, WATCH_BACKOFF_MAX_MS);
        continue;
      }
      // History lost (compaction...): list again at once after a stream that had been working, but a
      // stream refused as soon as it is created must not turn into a hot loop (flannel #2470).
      if (stable()) {
        backoff = WATCH_BACKOFF_MIN_MS;
        continue;
      }
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, WATCH_BACKOFF_MAX_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.stream) close(this.stream);
    clearTimeout(this.sleepTimer);
    clearTimeout(this.refreshTimer);
    this.wake?.();
  }

  private report(err: unknown, backoff: number, relist: boolean): void {
    const next = relist ? "listing again" : `resuming from revision ${this.since}`;
    if (err instanceof StoreUnavailableError) {
      this.onError(
        new StoreUnavailableError(`watch of ${this.deps.prefix}: ${err.message}; ${next} in ${backoff} ms`, {
          cause: err,
        }),
      );
      return;
    }
    this.onError(
      new StoreUnavailableError(
        `etcd ${this.deps.client.where}: the watch of ${this.deps.prefix} broke (${explain(err, this.deps.client.endpoints)}); ${next} in ${backoff} ms`,
        { cause: err },
      ),
    );
  }

  private async list(): Promise<void> {
    const { header, kvs, leases } = await this.deps.client.op(`list of ${this.deps.prefix}`, async (call) => {
      const r = await this.deps.client.range(this.key, this.end, call);
      return { header: r.header, kvs: r.kvs, leases: await this.deps.leasesOf(r.kvs, call) };
    });
    this.set.clear();
    kvs.forEach((kv, i) => {
      const lease = leases[i];
      if (lease) this.set.set(kv.key.toString(), { kv, lease });
    });
    this.since = Number(header.revision) + 1;
    this.clusterId = header.cluster_id;
    this.emit();
  }

  /** Follows one Watch stream until it breaks (throws), ends, or the history is lost ("relist"). */
  private async follow(established: () => void): Promise<Verdict> {
    const stream = await this.deps.client.watchStream();
    if (this.stopped) {
      close(stream);
      return undefined;
    }
    this.stream = stream;
    stream.on("error", () => undefined); // failures reach the loop below; a late one must not crash
    // A stream whose creation is never confirmed (a server that accepts connections and says nothing)
    // would wait forever: it gets the store's deadline like any call.
    let created = false;
    const creationTimer = setTimeout(() => {
      if (!created) close(stream);
    }, this.deps.client.timeoutMs);
    try {
      stream.write({
        create_request: {
          key: this.key,
          range_end: this.end,
          start_revision: this.since,
          progress_notify: true,
        },
      });
      for await (const res of stream as unknown as AsyncIterable<IWatchResponse>) {
        if (this.stopped) return undefined;
        if (res.created) {
          created = true;
          clearTimeout(creationTimer);
          established();
        }
        const verdict = await this.handle(res);
        if (verdict) return verdict;
      }
      if (!created && !this.stopped) {
        throw new Error(
          `no answer to the watch request within the ${this.deps.client.timeoutMs} ms deadline`,
        );
      }
      return undefined;
    } catch (err) {
      if (!created && !this.stopped && isCancelled(err)) {
        throw new Error(
          `no answer to the watch request within the ${this.deps.client.timeoutMs} ms deadline`,
          {
            cause: err,
          },
        );
      }
      throw err;
    } finally {
      clearTimeout(creationTimer);
      this.stream = undefined;
      close(stream);
    }
  }

  private async handle(res: IWatchResponse): Promise<Verdict> {
    const { log, prefix } = this.deps;
    if (this.clusterId && res.header.cluster_id !== this.clusterId) {
      log.warn("etcd answers for another cluster now; listing the subnets again", {
        prefix,
        was: this.clusterId,
        now: res.header.cluster_id,
      });
      return "relist";
    }
    if (res.compact_revision !== "0") {
      log.warn(
        "etcd watch fell behind the compaction horizon; listing the subnets again and resuming from there",
        {
          prefix,
          from: this.since,
          compacted: res.compact_revision,
        },
      );
      return "relist";
    }
    if (res.canceled) throw new Error(`etcd cancelled the watch: ${res.cancel_reason || "no reason given"}`);
    const revision = Number(res.header.revision);
    if (res.created) {
      if (revision < this.since - 1) {
        log.warn("etcd's revision went backwards (its data was replaced); listing the subnets again", {
          prefix,
          expected: this.since - 1,
          now: revision,
        });
        return "relist";
      }
      return undefined;
    }
    if (res.events.length === 0) {
      // A progress notification: every event up to `revision` has been sent.
      this.since = Math.max(this.since, revision + 1);
      return undefined;
    }
    const puts = res.events.filter((e) => e.type === "Put").map((e) => e.kv);
    const leases = await this.deps.client.op(`reading the leases of ${puts.length} changed keys`, (call) =>
      this.deps.leasesOf(puts, call),
    );
    let p = 0;
    for (const e of res.events) {
      const key = e.kv.key.toString();
      const lease = e.type === "Put" ? leases[p++] : undefined;
      if (lease) this.set.set(key, { kv: e.kv, lease });
      else this.set.delete(key);
    }
    // The last event's revision, not the header's: while a watch catches up on history, etcd sends the
    // store's current revision in the header of every batch, and a batch may not be the last one.
    const last = res.events[res.events.length - 1]!;
    this.since = Math.max(this.since, Number(last.kv.mod_revision) + 1);
    this.emit();
    return undefined;
  }

  private emit(): void {
    if (this.stopped) return; // a list or an event read that finished after stop(): nobody listens
    const leases = [...this.set.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, e]) => e.lease);
    try {
      this.onLeases(leases);
    } catch (err) {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    }
    this.scheduleRefresh();
  }

  /**
   * A lease kept alive by its holder ends later than it did when read, and no event says so: re-read
   * the ends as they go stale (etcd-expiry.ts), so the set never shows a live lease as expired.
   */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const ids = [...this.set.values()].map((e) => e.kv.lease).filter((id) => id !== "0");
    const at = this.deps.expiries.nextStale(ids);
    if (at === undefined || this.stopped) return;
    const delay = Math.min(Math.max(at - Date.now(), 1000), 2 ** 31 - 1);
    this.refreshTimer = setTimeout(() => void this.refresh(), delay);
    this.refreshTimer.unref();
  }

  private async refresh(): Promise<void> {
    const entries = [...this.set.values()];
    try {
      const leases = await this.deps.client.op("refreshing lease expirations", (call) =>
        this.deps.leasesOf(
          entries.map((e) => e.kv),
          call,
        ),
      );
      if (this.stopped) return;
      let changed = false;
      entries.forEach((e, i) => {
        const lease = leases[i];
        const now = this.set.get(e.kv.key.toString());
        // Only entries no event replaced meanwhile; a lease gone (undefined) leaves with its delete event.
        if (lease && now === e && lease.expiration !== e.lease.expiration) {
          now.lease = lease;
          changed = true;
        }
      });
      if (changed) this.emit();
      else this.scheduleRefresh();
    } catch (err) {
      if (this.stopped) return;
      this.onError(err instanceof Error ? err : new Error(String(err)));
      this.refreshTimer = setTimeout(() => void this.refresh(), WATCH_BACKOFF_MAX_MS);
      this.refreshTimer.unref();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }
}

/**
 * Ends our side, then cancels. The order matters: etcd3 takes a CANCELLED error on a stream still
 * writable for its host failing and closes all of that host's clients, cutting off calls just started
 * ("Channel closed before call started"); ended first, the stream is no longer writable.
 */
function close(stream: WatchStream): void {
  stream.end();
  stream.cancel();
}

function isCancelled(err: unknown): boolean {
  return (
    (err as { code?: unknown })?.code === 1 || /CANCELLED|cancelled/i.test(String((err as Error)?.message))
  );
}
