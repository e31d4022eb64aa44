import type { Lease } from "../lease.js";

/**
 * Where leases live: one implementation per file in this folder (`file.ts`: a directory shared by the
 * daemons of one machine; `etcd.ts`: flanneld's etcd layout). Shaped after flanneld's subnet manager so
 * a Kubernetes store (lease = node.spec.podCIDR, backend data in node annotations) can be added the same
 * way: the lease manager above it knows nothing of keys, revisions or files.
 *
 * Every call has a deadline and rejects with StoreUnavailableError when the store cannot be reached, so
 * the daemon keeps programming its last known state instead of hanging.
 */
export interface SubnetStore {
  /** "file", "etcd": for logs and /readyz. */
  readonly name: string;
  /** Where it is, for messages ("etcd https://10.0.0.5:2379", "file /var/lib/weft/leases"). */
  readonly description: string;

  /** The network config document the store holds (etcd: `<prefix>/config`), or undefined if it has none. */
  networkConfig(): Promise<string | undefined>;

  /** Every lease now in the store (expired ones excluded; reservations included). */
  list(): Promise<Lease[]>;

  /**
   * Takes the subnet(s) of `lease` if nobody holds them, atomically (etcd: a transaction on the key's
   * absence; file: exclusive creation), for `ttlMs`. Returns the stored lease with its expiration, or
   * undefined when another node holds the subnet.
   */
  create(lease: Lease, ttlMs: number): Promise<Lease | undefined>;

  /**
   * Extends a lease this node holds, only if the stored value is still this node's (compare-and-swap on
   * what was written: a node back from a partition must not overwrite a subnet another node now owns).
   * A reservation (no expiration) is returned unchanged and never given a TTL. Rejects with
   * LeaseLostError when the key is gone or holds another node's value.
   */
  renew(lease: Lease, ttlMs: number): Promise<Lease>;

  /** Gives a lease up (only if it is still this node's). */
  release(lease: Lease): Promise<void>;

  /**
   * Calls `onLeases` with the whole current set of leases, first at once and again after every change
   * (level-triggered: a consumer diffs sets, it never has to replay events). Reconnects, resumes and
   * re-lists by itself; `onError` hears about trouble (rate-limited by the caller). Returns a function
   * that stops the watch.
   */
  watch(onLeases: (leases: Lease[]) => void, onError: (err: Error) => void): () => void;

  close(): Promise<void>;
}

/** The store could not be reached (in time); the node keeps its last known state and retries. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/** The lease is gone from the store, or another node's value now sits on its key. */
export class LeaseLostError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LeaseLostError";
  }
}
