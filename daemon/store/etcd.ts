import { posix } from "node:path";
import type { CallOptions } from "@grpc/grpc-js";
import type { Logger } from "../../shared/log.js";
import { encodeLeaseAttrs, type Lease, type LeaseAttrs, parseSubnetKey, subnetKey } from "../lease.js";
import { describe, EtcdClient, type IKeyValue } from "./etcd-client.js";
import { LeaseExpiries } from "./etcd-expiry.js";
import { prefixEnd, watchLeases } from "./etcd-watch.js";
import { LeaseLostError, type SubnetStore } from "./store.js";

/**
 * The etcd v3 store in flanneld's layout (pkg/subnet/etcd, anchors 10.2), so weft and flanneld nodes
 * share one etcd and route to each other:
 *   <prefix>/config                                 the network config JSON
 *   <prefix>/subnets/10.5.34.0-24[&fc00:0:0:22::-64] lease JSON (lease.ts), on an etcd lease with a TTL
 * What it does differently from flanneld, each time where flanneld fails its users (anchors 10.1):
 * - every call ends within a deadline with a StoreUnavailableError naming endpoints, deadline and cause;
 * - renewal keeps one etcd lease alive (KeepAlive) after checking the key is still this node's, and any
 *   write is a compare-and-swap on the key's ModRevision (flanneld grants a new lease and Puts blindly);
 * - a key without an etcd lease is a reservation: it never gets a TTL and is never renewed;
 * - expirations come from a cache of lease ends, not one TimeToLive RPC per key per list;
 * - the watch resumes at an advancing revision and re-lists after compaction (etcd-watch.ts).
 */
export interface EtcdStoreOptions {
  endpoints: string[];
  /** flanneld's --etcd-prefix, e.g. "/coreos.com/network". */
  prefix: string;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Deadline of every store call (default 5000 ms). */
  timeoutMs?: number | undefined;
  log: Logger;
}

export const DEFAULT_ETCD_TIMEOUT_MS = 5000;

/** How many TimeToLive calls one list keeps in flight. */
const TTL_CONCURRENCY = 16;
/** Compare-and-swap rounds before a key that keeps changing under us counts as lost. */
const CAS_ROUNDS = 3;

export function createEtcdStore(o: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(o);
}

export class EtcdStore implements SubnetStore {
  readonly name = "etcd";
  readonly description: string;
  private readonly client: EtcdClient;
  private readonly log: Logger;
  private readonly configKey: Buffer;
  private readonly subnetsPrefix: string;
  private readonly expiries = new LeaseExpiries();
  /** The ModRevision of each key as this process last wrote or renewed it. */
  private readonly written = new Map<string, string>();
  /** What etcd granted for a TTL we asked for (it may round up). */
  private readonly granted = new Map<number, number>();
  /** Bad keys already warned about (key@revision), so a list or resync does not repeat the warning. */
  private readonly warned = new Set<string>();
  private readonly watches = new Set<() => void>();

  constructor(o: EtcdStoreOptions) {
    this.log = o.log;
    this.client = new EtcdClient({
      endpoints: o.endpoints,
      caFile: o.caFile,
      certFile: o.certFile,
      keyFile: o.keyFile,
      username: o.username,
      password: o.password,
      timeoutMs: o.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS,
    });
    for (const w of this.client.warnings) this.log.warn(w);
    // flanneld joins with path.Join: "/coreos.com/network/" and "/coreos.com/network" are one prefix.
    this.configKey = Buffer.from(posix.join(o.prefix, "config"));
    this.subnetsPrefix = `${posix.join(o.prefix, "subnets")}/`;
    this.description = `etcd ${this.client.where}`;
  }

  async networkConfig(): Promise<string | undefined> {
    return this.client.op(`read of ${this.configKey}`, async (call) => {
      const r = await this.client.range(this.configKey, undefined, call);
      return r.kvs[0]?.value.toString();
    });
  }

  async list(): Promise<Lease[]> {
    return this.client.op(`list of ${this.subnetsPrefix}`, async (call) => {
      const key = Buffer.from(this.subnetsPrefix);
      const r = await this.client.range(key, prefixEnd(key), call);
      const leases = await this.leasesOf(r.kvs, call);
      this.expiries.keepOnly(new Set(r.kvs.map((kv) => kv.lease)));
      return leases.filter((l): l is Lease => l !== undefined);
    });
  }

  async create(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    const key = this.keyOf(lease);
    const k = Buffer.from(key);
    const value = encodeLeaseAttrs(lease.attrs);
    const ttl = ttlSeconds(ttlMs);
    return this.client.op(`create of ${key}`, async (call) => {
      const sent = Date.now();
      const grant = await this.client.grant(ttl, call);
      this.granted.set(ttl, Number(grant.TTL));
      let tx: Awaited<ReturnType<EtcdClient["txn"]>>;
      try {
        // flanneld's createSubnet: Put only if the key does not exist (Version == 0, as for a deleted key).
        tx = await this.client.txn(
          [{ key: k, target: "Version", result: "Equal", version: 0 }],
          [{ request_put: { key: k, value: Buffer.from(value), lease: grant.ID } }],
          [],
          call,
        );
      } catch (err) {
        // The Put may have happened: revoking the lease also removes the key then.
        this.revokeLater(grant.ID, key);
        throw err;
      }
      if (!tx.succeeded) {
        await this.revokeQuietly(grant.ID, call);
        return undefined;
      }
      this.written.set(key, tx.header.revision);
      return { ...lease, expiration: this.expiries.learn(grant.ID, Number(grant.TTL), sent) };
    });
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    const key = this.keyOf(lease);
    const want = encodeLeaseAttrs(lease.attrs);
    const ttl = ttlSeconds(ttlMs);
    return this.client.op(
      `renewal of ${key}`,
      async (call) => {
        for (let round = 0; round < CAS_ROUNDS; round++) {
          const cur = await this.mine(key, lease, call);
          if (cur.lease === "0") {
            // A reservation (an operator's key without a lease): flanneld's own-lease reuse publishes the
            // node's current attributes on it, but it stays without a TTL (flannel #1329 made it a lease).
            if (cur.value.toString() !== want && !(await this.swap(key, cur, want, "0", call))) continue;
            return { ...lease, expiration: undefined };
          }
          const sent = Date.now();
          const alive = await this.client.keepAliveOnce(cur.lease, call);
          if (alive.ttl <= 0) {
            this.expiries.forget(cur.lease);
            throw new LeaseLostError(
              `the etcd lease ${leaseHex(cur.lease)} of ${key} expired or was revoked (the key goes with it)`,
            );
          }
          const sameTtl = alive.ttl === (this.granted.get(ttl) ?? ttl);
          if (sameTtl && cur.value.toString() === want) {
            // Checked the key is ours, then kept its lease alive: no write, so nothing to race with. A key
            // taken over between the two keeps a lease alive for nothing; the watch tells the daemon.
            this.written.set(key, cur.mod_revision);
            return { ...lease, expiration: this.expiries.learn(cur.lease, alive.ttl, sent) };
          }
          // Our attributes changed (a new VtepMAC), or another TTL is asked for: compare-and-swap on the
          // ModRevision just read; a fresh etcd lease only when the TTL changes.
          const fresh = sameTtl ? undefined : await this.client.grant(ttl, call);
          if (fresh) this.granted.set(ttl, Number(fresh.TTL));
          if (!(await this.swap(key, cur, want, fresh?.ID ?? cur.lease, call))) {
            if (fresh) await this.revokeQuietly(fresh.ID, call);
            continue;
          }
          if (!fresh) return { ...lease, expiration: this.expiries.learn(cur.lease, alive.ttl, sent) };
          await this.revokeIfUnused(cur.lease, call);
          return { ...lease, expiration: this.expiries.learn(fresh.ID, Number(fresh.TTL), sent) };
        }
        throw new LeaseLostError(`${key} changed under each of ${CAS_ROUNDS} renewal attempts`);
      },
      (err) => err instanceof LeaseLostError,
    );
  }

  async release(lease: Lease): Promise<void> {
    const key = this.keyOf(lease);
    const k = Buffer.from(key);
    await this.client.op(
      `release of ${key}`,
      async (call) => {
        for (let round = 0; round < CAS_ROUNDS; round++) {
          let cur: IKeyValue | undefined;
          try {
            cur = await this.mine(key, lease, call, "ok");
          } catch (err) {
            if (!(err instanceof LeaseLostError)) throw err;
            this.log.info("Lease not released: it is no longer this node's", { key, reason: err.message });
            return;
          }
          if (!cur) return;
          if (cur.lease === "0") {
            this.log.info("Reservation kept: it is the operator's to remove", { key });
            return;
          }
          const tx = await this.client.txn(
            [{ key: k, target: "Mod", result: "Equal", mod_revision: cur.mod_revision }],
            [{ request_delete_range: { key: k } }],
            [],
            call,
          );
          if (!tx.succeeded) continue;
          this.written.delete(key);
          await this.revokeQuietly(cur.lease, call);
          return;
        }
        throw new LeaseLostError(`${key} changed under each of ${CAS_ROUNDS} release attempts`);
      },
      (err) => err instanceof LeaseLostError,
    );
  }

  watch(onLeases: (leases: Lease[]) => void, onError: (err: Error) => void): () => void {
    const stop = watchLeases(
      {
        client: this.client,
        prefix: this.subnetsPrefix,
        leasesOf: (kvs, call) => this.leasesOf(kvs, call),
        expiries: this.expiries,
        log: this.log,
      },
      onLeases,
      onError,
    );
    const stopOnce = () => {
      if (this.watches.delete(stopOnce)) stop();
    };
    this.watches.add(stopOnce);
    return stopOnce;
  }

  async close(): Promise<void> {
    for (const stop of [...this.watches]) stop();
    this.client.close();
  }

  private keyOf(lease: Lease): string {
    return this.subnetsPrefix + subnetKey(lease);
  }

  /**
   * The key as stored when it is still this node's: at the ModRevision this process wrote, or (after a
   * restart) holding this node's PublicIP, which is how flanneld recognises its own lease. Else it rejects
   * with LeaseLostError, or resolves undefined with `gone: "ok"` for a key that no longer exists.
   */
  private async mine(key: string, lease: Lease, call: CallOptions): Promise<IKeyValue>;
  private async mine(
    key: string,
    lease: Lease,
    call: CallOptions,
    gone: "ok",
  ): Promise<IKeyValue | undefined>;
  private async mine(
    key: string,
    lease: Lease,
    call: CallOptions,
    gone?: "ok",
  ): Promise<IKeyValue | undefined> {
    const r = await this.client.range(Buffer.from(key), undefined, call);
    const cur = r.kvs[0];
    if (!cur) {
      this.written.delete(key);
      if (gone) return undefined;
      throw new LeaseLostError(`the lease on ${lease.subnet} is gone from etcd (${key} no longer exists)`);
    }
    if (this.written.get(key) === cur.mod_revision) return cur;
    const holder = attrsOf(cur.value)?.PublicIP;
    if (holder === lease.attrs.PublicIP) return cur;
    this.written.delete(key);
    throw new LeaseLostError(
      `the lease on ${lease.subnet} now belongs to another node: ${key} holds PublicIP ${holder ?? "(unreadable value)"}, ours is ${lease.attrs.PublicIP}`,
    );
  }

  /** Puts `value` on `key` only if the key is still at the ModRevision read. */
  private async swap(key: string, cur: IKeyValue, value: string, leaseId: string, call: CallOptions) {
    const k = Buffer.from(key);
    const tx = await this.client.txn(
      [{ key: k, target: "Mod", result: "Equal", mod_revision: cur.mod_revision }],
      [{ request_put: { key: k, value: Buffer.from(value), lease: leaseId } }],
      [],
      call,
    );
    if (tx.succeeded) this.written.set(key, tx.header.revision);
    return tx.succeeded;
  }

  /** Leases of these kvs, in order; undefined for a key flanneld would skip or whose etcd lease is gone. */
  private async leasesOf(kvs: IKeyValue[], call: CallOptions): Promise<Array<Lease | undefined>> {
    const parsed = kvs.map((kv) => this.parse(kv));
    const ids = [...new Set(parsed.flatMap((p, i) => (p && kvs[i]!.lease !== "0" ? [kvs[i]!.lease] : [])))];
    const ends = new Map<string, number | undefined>();
    await eachLimited(ids, TTL_CONCURRENCY, async (id) => {
      const known = this.expiries.fresh(id);
      if (known !== undefined) {
        ends.set(id, known);
        return;
      }
      const sent = Date.now();
      const t = await this.client.timeToLive(id, call);
      if (t.ttl > 0) ends.set(id, this.expiries.learn(id, t.ttl, sent));
      else this.expiries.forget(id); // expired or revoked: etcd is removing its keys
    });
    return parsed.map((p, i) => {
      if (!p) return undefined;
      const id = kvs[i]!.lease;
      if (id === "0") return p; // a reservation: no expiration
      const expiration = ends.get(id);
      return expiration === undefined ? undefined : { ...p, expiration };
    });
  }

  /** A kv under subnets/ as a lease without expiration, or undefined (warned once) when flanneld would skip it. */
  private parse(kv: IKeyValue): Lease | undefined {
    const key = kv.key.toString();
    const subnets = parseSubnetKey(key.slice(this.subnetsPrefix.length));
    const attrs = subnets && attrsOf(kv.value);
    if (subnets && attrs) return { ...subnets, attrs };
    const seen = `${key}@${kv.mod_revision}`;
    if (!this.warned.has(seen)) {
      this.warned.add(seen);
      this.log.warn(
        subnets
          ? "Ignoring bad subnet node: unreadable lease value"
          : "Ignoring bad subnet node: not a subnet key",
        {
          key,
          value: subnets ? kv.value.toString().slice(0, 200) : undefined,
        },
      );
    }
    return undefined;
  }

  private async revokeQuietly(id: string, call: CallOptions): Promise<void> {
    this.expiries.forget(id);
    try {
      await this.client.revoke(id, call);
    } catch (err) {
      this.log.debug("etcd lease not revoked", { lease: leaseHex(id), error: describe(err) });
    }
  }

  /** After a failed create: the lease must go (it may carry the key); tried once more with a new deadline. */
  private revokeLater(id: string, key: string): void {
    this.expiries.forget(id);
    void this.client
      .op(`revoke of the lease of a failed create of ${key}`, (call) => this.client.revoke(id, call))
      .catch((err: Error) =>
        this.log.warn("etcd lease of a failed create not revoked; it expires with its TTL", {
          key,
          lease: leaseHex(id),
          error: err.message,
        }),
      );
  }

  /** Revokes a lease replaced on our key, unless something else still hangs on it. */
  private async revokeIfUnused(id: string, call: CallOptions): Promise<void> {
    try {
      const t = await this.client.timeToLive(id, call, true);
      if (t.ttl > 0 && t.keys.length === 0) await this.client.revoke(id, call);
    } catch (err) {
      this.log.debug("replaced etcd lease not revoked", { lease: leaseHex(id), error: describe(err) });
    }
    this.expiries.forget(id);
  }
}

/** A lease value as flanneld reads it (Go unmarshals missing fields as empty), or undefined if unreadable. */
export function attrsOf(value: Buffer | string): LeaseAttrs | undefined {
  let v: unknown;
  try {
    v = JSON.parse(value.toString());
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.PublicIP !== "string") return undefined;
  const attrs: LeaseAttrs = {
    PublicIP: o.PublicIP,
    PublicIPv6: typeof o.PublicIPv6 === "string" ? o.PublicIPv6 : null,
  };
  if (typeof o.BackendType === "string" && o.BackendType !== "") attrs.BackendType = o.BackendType;
  if (o.BackendData !== undefined && o.BackendData !== null) attrs.BackendData = o.BackendData;
  if (o.BackendV6Data !== undefined && o.BackendV6Data !== null) attrs.BackendV6Data = o.BackendV6Data;
  return attrs;
}

/** etcd leases are whole seconds; a TTL under one second would be refused. */
function ttlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

/** etcdctl prints lease IDs in hex. */
export function leaseHex(id: string): string {
  return BigInt(id).toString(16);
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
