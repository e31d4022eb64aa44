import type { Logger } from "../shared/log.js";
import { type Clock, realClock, sleep, type Timer } from "./clock.js";
import type { Lease, LeaseAttrs } from "./lease.js";
import { RateLimitedLog } from "./log-limit.js";
import type { NetworkConfig } from "./net-conf.js";
import { LeaseLostError, StoreUnavailableError, type SubnetStore } from "./store/store.js";
import { holderOf, isCompatible, OutOfSubnetsError, pickSubnets } from "./subnets.js";

/**
 * The node's lease, from acquisition to shutdown, as flanneld's local manager keeps it
 * (pkg/subnet/etcd/local_manager.go) and without the ways it fails its users (anchors 10.1):
 *
 * - acquire order: the lease that carries this node's PublicIP (a restart), re-written with the node's
 *   current attributes; else the subnet subnet.env names, if nobody holds it and it fits the config; else
 *   a random one among the first 100 free. A creation lost to another node is retried (10 times);
 * - renewal at expiry minus the margin, through the store's compare-and-swap, retried while the store is
 *   unreachable; a reservation (no expiration) is never renewed and never turned into a lease;
 * - a lease lost while running (gone from the store, expired, another node's value on its key) is
 *   re-acquired in this process, the same subnet first. If the subnet must change, that is logged as an
 *   error and kept in the status for /readyz. Nothing here ever exits the process;
 * - while the store is unreachable the last lease stays in use: the daemon keeps programming it.
 */
export interface LeaseManagerOptions {
  store: SubnetStore;
  config: NetworkConfig;
  /** What this node advertises (PublicIP identifies it, as in flanneld). */
  attrs: LeaseAttrs;
  /** The subnet(s) of the existing subnet.env, tried before a random one. */
  previous?: Pick<Lease, "subnet" | "ipv6Subnet">;
  ttlMs: number;
  renewMarginMs: number;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  /** Waits between attempts while the store is unreachable or full: doubling from min to max. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface LeaseStatus {
  lease?: Lease;
  /** When the lease was last written (acquired, renewed). */
  lastRenewal?: number;
  /** Why no lease is held right now (lost and not yet back, or not yet acquired). */
  problem?: string;
  /** The store failed to renew and the lease's expiration has passed since: when it expired. */
  unreachableSince?: number;
  /** The subnet had to change while running. */
  changed?: { from: string; to: string; at: number; why: string };
}

export interface LeaseListener {
  /** The lease is held again after a loss; its subnet differs from `previous` when it had to change. */
  onLease(lease: Lease, previous: Lease): void;
  /** Something in the status changed (for /readyz and /metrics). */
  onStatus(status: LeaseStatus): void;
}

const RACE_RETRIES = 10;

export class LeaseManager {
  readonly status: LeaseStatus = {};
  private readonly clock: Clock;
  private readonly rlog: RateLimitedLog;
  private readonly abort = new AbortController();
  private listener: LeaseListener | undefined;
  private renewTimer: Timer | undefined;
  private recovering: Promise<void> | undefined;
  /** Store work in progress (renewals, checks, recovery), for drained(). */
  private readonly inflight = new Set<Promise<void>>();
  private checking = false;
  /** Why the preferred subnet was not taken by the last tryAcquire, for the subnet-change message. */
  private refusal = "";

  constructor(private readonly o: LeaseManagerOptions) {
    this.clock = o.clock ?? realClock;
    this.rlog = new RateLimitedLog(o.log, 60_000, this.clock);
  }

  get lease(): Lease | undefined {
    return this.status.lease;
  }

  /** Takes a lease, retrying while the store is unreachable or full; rejects only once stopped. */
  async acquire(): Promise<Lease> {
    const lease = await this.retrying(() => this.tryAcquire(this.o.previous), "failed to acquire lease");
    this.held(lease);
    return lease;
  }

  /** Starts renewing the acquired lease and reporting its fate. */
  start(listener: LeaseListener): void {
    this.listener = listener;
    this.scheduleRenew();
  }

  /**
   * Hears the store's current set of leases (the daemon's watch). A set without this node's lease, or
   * with another node's value on its key, is confirmed with a fresh read, then treated as a loss.
   */
  observe(leases: Lease[]): void {
    const lease = this.status.lease;
    if (!lease || this.recovering || this.checking || this.abort.signal.aborted) return;
    if (this.whyLost(leases, lease) === undefined) return;
    this.checking = true;
    const check = this.o.store
      .list()
      .then((fresh) => {
        const why = this.status.lease === lease ? this.whyLost(fresh, lease) : undefined;
        if (why !== undefined) this.lost(why);
      })
      .catch((err) => this.rlog.warn("Could not check the lease in the store", { error: String(err) }))
      .finally(() => {
        this.checking = false;
      });
    this.track(check);
  }

  stop(): void {
    this.abort.abort();
    this.clock.clearTimeout(this.renewTimer);
  }

  /** Resolves once the store calls started before stop() have ended (nothing writes after that). */
  async drained(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track(p: Promise<unknown>): void {
    const done = p.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.add(done);
    void done.then(() => this.inflight.delete(done));
  }

  // -------------------------------------------------------------------------------------------------------

  private whyLost(leases: Lease[], lease: Lease): string | undefined {
    const cur = leases.find((l) => l.subnet === lease.subnet && l.ipv6Subnet === lease.ipv6Subnet);
    if (!cur) return "it is gone from the store (deleted, or expired before it was renewed)";
    if (cur.attrs.PublicIP !== this.o.attrs.PublicIP)
      return `another node (${cur.attrs.PublicIP}) now holds it`;
    return undefined;
  }

  private held(lease: Lease): void {
    this.status.lease = lease;
    this.status.lastRenewal = this.clock.now();
    this.status.problem = undefined;
    this.status.unreachableSince = undefined;
  }

  private notify(): void {
    this.listener?.onStatus(this.status);
  }

  /** Runs `attempt` until it succeeds, waiting (doubling) after store trouble or a full network. */
  private async retrying<T>(attempt: () => Promise<T>, what: string): Promise<T> {
    const min = this.o.retryMinMs ?? 1000;
    const max = this.o.retryMaxMs ?? 30_000;
    let wait = min;
    for (;;) {
      if (this.abort.signal.aborted) throw new Error("weftd is stopping");
      try {
        return await attempt();
      } catch (err) {
        if (
          !(
            err instanceof StoreUnavailableError ||
            err instanceof OutOfSubnetsError ||
            err instanceof RaceError
          )
        )
          throw err;
        this.status.problem = `${what}: ${err.message}`;
        this.notify();
        const line = `${what}: ${err.message} (retrying)`;
        if (err instanceof StoreUnavailableError) this.rlog.warn(line);
        else this.rlog.error(line);
      }
      await sleep(this.clock, wait, this.abort.signal);
      wait = Math.min(wait * 2, max);
    }
  }

  private async tryAcquire(preferred: Pick<Lease, "subnet" | "ipv6Subnet"> | undefined): Promise<Lease> {
    const { store, config, attrs, ttlMs, log } = this.o;
    const me = attrs.PublicIP;
    this.refusal = "";
    for (let i = 0; i < RACE_RETRIES; i++) {
      const leases = await store.list();
      const mine = leases.filter((l) => l.attrs.PublicIP === me);
      const own = mine.find((l) => isCompatible(config, l));
      if (own) {
        log.info(
          `Found lease (ip: ${own.subnet} ipv6: ${own.ipv6Subnet ?? "none"}) for current IP (${me}), reusing`,
        );
        try {
          return await store.renew({ ...own, attrs }, ttlMs);
        } catch (err) {
          if (err instanceof LeaseLostError) continue; // it went away in between: look again
          throw err;
        }
      }
      for (const l of mine) {
        log.info(
          `Found lease (ip: ${l.subnet} ipv6: ${l.ipv6Subnet ?? "none"}) for current IP (${me}) but not compatible with current config, deleting`,
        );
        await store.release(l);
      }

      let want: Pick<Lease, "subnet" | "ipv6Subnet"> | undefined;
      if (preferred?.subnet !== undefined || preferred?.ipv6Subnet !== undefined) {
        const holder = holderOf(leases, preferred);
        if (holder) {
          this.refusal = `${preferred.subnet ?? preferred.ipv6Subnet} is now leased to ${holder.attrs.PublicIP}`;
        } else if (!isCompatible(config, preferred)) {
          this.refusal = `${preferred.subnet ?? preferred.ipv6Subnet} does not fit the network config`;
          log.error(
            `Found previously leased subnet (${preferred.subnet ?? preferred.ipv6Subnet}) that is not compatible with the network config, ignoring`,
          );
        } else {
          log.info(`Found previously leased subnet (${preferred.subnet ?? preferred.ipv6Subnet}), reusing`);
          want = { subnet: preferred.subnet, ipv6Subnet: preferred.ipv6Subnet };
        }
      }
      if (!want) {
        log.info(
          `Picking subnet in range ${config.subnetMin ?? config.ipv6SubnetMin} ... ${config.subnetMax ?? config.ipv6SubnetMax}`,
        );
        want = pickSubnets(config, leases, this.o.random);
      }
      const created = await store.create(clean({ ...want, attrs }), ttlMs);
      if (created) {
        log.info(
          `Allocated lease (ip: ${created.subnet} ipv6: ${created.ipv6Subnet ?? "none"}) to current node (${me})`,
        );
        return created;
      }
      // Another node created it first: look at the store again.
    }
    throw new RaceError("max retries reached trying to acquire a subnet");
  }

  private scheduleRenew(): void {
    this.clock.clearTimeout(this.renewTimer);
    const lease = this.status.lease;
    if (!lease || lease.expiration === undefined || this.abort.signal.aborted) return;
    const wait = lease.expiration - this.o.renewMarginMs - this.clock.now();
    this.renewTimer = this.clock.setTimeout(() => void this.track(this.renew()), Math.max(0, wait));
  }

  private async renew(): Promise<void> {
    const lease = this.status.lease;
    if (!lease || this.recovering || this.abort.signal.aborted) return;
    try {
      const renewed = await this.o.store.renew({ ...lease, attrs: this.o.attrs }, this.o.ttlMs);
      if (this.status.lease !== lease) return;
      this.held(renewed);
      this.o.log.info(
        `Lease renewed, new expiration: ${renewed.expiration !== undefined ? new Date(renewed.expiration).toISOString() : "none (reservation)"}`,
      );
      this.rlog.reset();
      this.notify();
      this.scheduleRenew();
    } catch (err) {
      if (err instanceof LeaseLostError) return this.lost(err.message);
      if (!(err instanceof StoreUnavailableError))
        this.o.log.error("Error renewing lease", { error: String(err) });
      const retry = Math.min(60_000, Math.max(1000, Math.floor(this.o.renewMarginMs / 10)));
      this.rlog.error(
        `Error renewing lease (trying again in ${Math.round(retry / 1000)}s): ${(err as Error).message}`,
      );
      if (lease.expiration !== undefined && this.clock.now() >= lease.expiration) {
        this.status.unreachableSince ??= lease.expiration;
        this.notify();
      }
      this.clock.clearTimeout(this.renewTimer);
      this.renewTimer = this.clock.setTimeout(() => void this.track(this.renew()), retry);
    }
  }

  /** The lease is gone or taken: get it back (the same subnet if at all possible) without exiting. */
  private lost(why: string): void {
    const prev = this.status.lease;
    if (!prev || this.recovering || this.abort.signal.aborted) return;
    this.clock.clearTimeout(this.renewTimer);
    const name = prev.subnet ?? prev.ipv6Subnet;
    this.o.log.error(`Lease for ${name} lost: ${why}; re-acquiring it (the same subnet first)`);
    this.status.problem = `lease for ${name} lost: ${why}`;
    this.notify();
    const recovery = this.retrying(() => this.tryAcquire(prev), `re-acquiring the lease for ${name}`)
      .then((lease) => {
        this.held(lease);
        if (lease.subnet === prev.subnet && lease.ipv6Subnet === prev.ipv6Subnet) {
          this.o.log.warn(`Lease for ${name} re-acquired: the subnet is unchanged`);
        } else {
          const to = lease.subnet ?? lease.ipv6Subnet ?? "";
          const because = this.refusal || why;
          this.status.changed = { from: name ?? "", to, at: this.clock.now(), why: because };
          this.o.log.error(
            `SUBNET CHANGED: this node's pod subnet is now ${to}, no longer ${name} (${because}). Pods started before keep their addresses in ${name} and are no longer routed to; recreate them. /readyz reports this until weftd restarts`,
          );
        }
        this.recovering = undefined;
        this.listener?.onLease(lease, prev);
        this.notify();
        this.scheduleRenew();
      })
      .catch((err) => {
        this.recovering = undefined;
        if (!this.abort.signal.aborted)
          this.o.log.error("Giving up re-acquiring the lease", { error: String(err) });
      });
    this.recovering = recovery;
    this.track(recovery);
  }
}

/** Every attempt lost the creation race: retried like a store outage. */
class RaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaceError";
  }
}

/** A lease without undefined subnet fields (the stores key on which ones are present). */
function clean(l: Lease): Lease {
  const out: Lease = { attrs: l.attrs };
  if (l.subnet !== undefined) out.subnet = l.subnet;
  if (l.ipv6Subnet !== undefined) out.ipv6Subnet = l.ipv6Subnet;
  return out;
}
