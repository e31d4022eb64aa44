import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Lease } from "../../daemon/lease.js";
import { LeaseLostError, type SubnetStore } from "../../daemon/store/store.js";

/**
 * What every SubnetStore must do, run against each store (file, etcd) through a harness: create is the
 * arbiter (one winner among racing nodes), renewal is a compare-and-swap that refuses a key now holding
 * another node's value, reservations stay reservations, the watch hands over the whole set after every
 * change, release frees the subnet. Store-specific layout and faults are tested next to each store.
 */
export interface StoreHarness {
  /** A client of the store under test, as one node has it; each call is another node's client. */
  open(): Promise<SubnetStore>;
  /**
   * Writes a lease behind the stores' back, as flanneld or an operator would: with `ttlMs` another node's
   * lease, without it a reservation (no expiry).
   */
  writeRaw(lease: Lease, ttlMs?: number): Promise<void>;
  /** Removes a lease behind the stores' back (an operator deleting the key). */
  deleteRaw(lease: Lease): Promise<void>;
  /** Stores the network config document (a store that holds none leaves this out). */
  writeConfig?(doc: string): Promise<void>;
  /** Closes what open() gave and removes what the test left. */
  dispose(): Promise<void>;
}

export interface ContractOptions {
  /** Once before the suite (start a server...). */
  setup?: () => Promise<void>;
  /** Once after it. */
  teardown?: () => Promise<void>;
  /** The shortest TTL the store honours (etcd: whole seconds, 2 s at least). */
  shortTtlMs: number;
  /** How long after its TTL an unrenewed lease may still be listed (etcd checks expiry every 500 ms). */
  expiryGraceMs: number;
}

export function vxlanLease(subnet: string, publicIP: string, mac = "aa:bb:cc:00:00:01"): Lease {
  return {
    subnet,
    attrs: {
      PublicIP: publicIP,
      PublicIPv6: null,
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: mac },
    },
  };
}

const HOUR = 3_600_000;

/** Collects what a watch hands over; next() waits for a set that satisfies a predicate. */
export class WatchLog {
  readonly sets: Lease[][] = [];
  readonly errors: Error[] = [];
  private waiters: Array<() => void> = [];
  readonly stop: () => void;

  constructor(store: SubnetStore) {
    this.stop = store.watch(
      (leases) => {
        this.sets.push(leases);
        for (const w of this.waiters.splice(0)) w();
      },
      (err) => {
        this.errors.push(err);
      },
    );
  }

  get last(): Lease[] | undefined {
    return this.sets[this.sets.length - 1];
  }

  /** Resolves the latest set handed over once one satisfies `pred` (the latest already may). */
  async next(
    pred: (leases: Lease[]) => boolean,
    timeoutMs = 10_000,
    what = "a matching lease set",
  ): Promise<Lease[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const last = this.last;
      if (last && pred(last)) return last;
      const left = until - Date.now();
      if (left <= 0) {
        throw new Error(
          `watch: no ${what} within ${timeoutMs} ms; last set: ${JSON.stringify(last)}; errors: ${this.errors.map((e) => e.message).join(" | ")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

export const subnetsOf = (leases: Lease[]) => leases.map((l) => l.subnet).sort();

export function storeContract(title: string, harness: () => Promise<StoreHarness>, o: ContractOptions): void {
  const t = suite(`store contract: ${title}`);
  if (o.setup) t.before(o.setup);
  if (o.teardown) t.after(o.teardown);

  const withHarness = (name: string, fn: (h: StoreHarness) => Promise<void>) =>
    t(name, async () => {
      const h = await harness();
      try {
        await fn(h);
      } finally {
        await h.dispose();
      }
    });

  withHarness("create takes a free subnet once; a second create of it answers undefined", async (h) => {
    const a = await h.open();
    const b = await h.open();
    const before = Date.now();
    const got = await a.create(vxlanLease("10.5.34.0/24", "192.168.77.1"), HOUR);
    assert.ok(got, "the first create wins");
    assert.equal(got.attrs, vxlanLease("10.5.34.0/24", "192.168.77.1").attrs);
    assert.ok(
      got.expiration && got.expiration >= before + HOUR - 2000 && got.expiration <= Date.now() + HOUR + 1000,
    );
    assert.is(await b.create(vxlanLease("10.5.34.0/24", "192.168.77.2"), HOUR), undefined);
    assert.is(
      await a.create(vxlanLease("10.5.34.0/24", "192.168.77.1"), HOUR),
      undefined,
      "even for its holder",
    );
    const listed = await b.list();
    assert.equal(subnetsOf(listed), ["10.5.34.0/24"]);
    assert.is(listed[0]!.attrs.PublicIP, "192.168.77.1");
    assert.ok(listed[0]!.expiration && Math.abs(listed[0]!.expiration - got.expiration!) < 2000);
  });

  withHarness(
    "racing creators of one subnet: exactly one wins, and the store holds the winner",
    async (h) => {
      const nodes = await Promise.all(Array.from({ length: 8 }, () => h.open()));
      const results = await Promise.all(
        nodes.map((s, i) => s.create(vxlanLease("10.5.40.0/24", `192.168.77.${i + 1}`), HOUR)),
      );
      const winners = results.filter((r) => r !== undefined);
      assert.is(winners.length, 1, `one winner, got ${winners.length}`);
      const listed = await nodes[0]!.list();
      assert.is(listed.length, 1);
      assert.is(listed[0]!.attrs.PublicIP, winners[0]!.attrs.PublicIP);
    },
  );

  withHarness("renew extends the lease and publishes changed attributes", async (h) => {
    const a = await h.open();
    const lease = await a.create(vxlanLease("10.5.35.0/24", "192.168.77.1"), HOUR);
    assert.ok(lease?.expiration);
    await new Promise((r) => setTimeout(r, 1100));
    const renewed = await a.renew(lease, HOUR);
    assert.ok(renewed.expiration! > lease.expiration!, "expiration moved on");
    const moved = vxlanLease("10.5.35.0/24", "192.168.77.1", "aa:bb:cc:00:00:02");
    const republished = await a.renew({ ...moved, expiration: renewed.expiration }, HOUR);
    assert.equal(republished.attrs, moved.attrs);
    const listed = await (await h.open()).list();
    assert.equal(listed[0]?.attrs, moved.attrs, "other nodes see the new attributes");
    assert.ok(listed[0]?.expiration);
    // And it is still ours: renewing again works.
    await a.renew(republished, HOUR);
  });

  withHarness(
    "renew of a key now holding another node's value rejects with LeaseLostError and leaves it",
    async (h) => {
      const a = await h.open();
      const lease = await a.create(vxlanLease("10.5.36.0/24", "192.168.77.1"), HOUR);
      assert.ok(lease);
      await h.deleteRaw(lease);
      const theirs = vxlanLease("10.5.36.0/24", "192.168.77.9", "aa:bb:cc:00:00:09");
      await h.writeRaw(theirs, HOUR);
      const err = await a.renew(lease, HOUR).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.instance(err, LeaseLostError);
      assert.match((err as Error).message, "192.168.77.9");
      const listed = await a.list();
      assert.equal(listed[0]?.attrs, theirs.attrs, "the other node's lease is untouched");
      await a.release(lease);
      assert.equal((await a.list())[0]?.attrs, theirs.attrs, "release leaves another node's lease alone");
    },
  );

  withHarness("renew of a lease deleted behind its back rejects with LeaseLostError", async (h) => {
    const a = await h.open();
    const lease = await a.create(vxlanLease("10.5.37.0/24", "192.168.77.1"), HOUR);
    assert.ok(lease);
    await h.deleteRaw(lease);
    const err = await a.renew(lease, HOUR).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, LeaseLostError);
    assert.equal(await a.list(), [], "renew did not bring it back");
  });

  withHarness(
    "a reservation is listed without expiry, renewed without a TTL and kept by release",
    async (h) => {
      const a = await h.open();
      const reserved = vxlanLease("10.5.38.0/24", "192.168.77.1");
      await h.writeRaw(reserved);
      const [listed] = await a.list();
      assert.ok(listed);
      assert.is(listed.expiration, undefined);
      assert.is(await a.create(reserved, HOUR), undefined, "a reserved subnet is taken");
      const renewed = await a.renew(listed, HOUR);
      assert.is(renewed.expiration, undefined, "never given a TTL");
      const [again] = await a.list();
      assert.is(again?.expiration, undefined, "still a reservation in the store");
      await a.release(renewed);
      assert.equal(subnetsOf(await a.list()), ["10.5.38.0/24"], "release keeps an operator's reservation");
    },
  );

  withHarness("watch hands over the whole set at once and after each change", async (h) => {
    const a = await h.open();
    const b = await h.open();
    const first = await a.create(vxlanLease("10.5.41.0/24", "192.168.77.1"), HOUR);
    assert.ok(first);
    const w = new WatchLog(await h.open());
    try {
      await w.next((s) => subnetsOf(s).join() === "10.5.41.0/24", 10_000, "the initial set");
      const second = await b.create(vxlanLease("10.5.42.0/24", "192.168.77.2"), HOUR);
      assert.ok(second);
      const both = await w.next((s) => s.length === 2, 10_000, "both leases");
      assert.equal(subnetsOf(both), ["10.5.41.0/24", "10.5.42.0/24"]);
      assert.is(both.find((l) => l.subnet === "10.5.42.0/24")?.attrs.PublicIP, "192.168.77.2");
      assert.ok(both.every((l) => l.expiration && l.expiration > Date.now()));
      await h.writeRaw(vxlanLease("10.5.43.0/24", "192.168.77.3"));
      await w.next(
        (s) => s.some((l) => l.subnet === "10.5.43.0/24" && l.expiration === undefined),
        10_000,
        "a reservation",
      );
      await a.release(first);
      const left = await w.next(
        (s) => !s.some((l) => l.subnet === "10.5.41.0/24"),
        10_000,
        "the set after release",
      );
      assert.equal(subnetsOf(left), ["10.5.42.0/24", "10.5.43.0/24"]);
    } finally {
      w.stop();
    }
  });

  withHarness("a stopped watch calls nobody, even when stopped before its first list answered", async (h) => {
    const a = await h.open();
    assert.ok(await a.create(vxlanLease("10.5.46.0/24", "192.168.77.1"), HOUR));
    let calls = 0;
    const stop = a.watch(
      () => {
        calls++;
      },
      () => undefined,
    );
    stop();
    const w = new WatchLog(a);
    try {
      await w.next((s) => s.length === 1, 10_000, "the set, on another watch");
      assert.ok(await a.create(vxlanLease("10.5.47.0/24", "192.168.77.1"), HOUR));
      await w.next((s) => s.length === 2, 10_000, "the change, on another watch");
      assert.is(calls, 0);
    } finally {
      w.stop();
    }
  });

  withHarness("release frees the subnet for another node", async (h) => {
    const a = await h.open();
    const b = await h.open();
    const lease = await a.create(vxlanLease("10.5.44.0/24", "192.168.77.1"), HOUR);
    assert.ok(lease);
    await a.release(lease);
    assert.equal(await b.list(), []);
    assert.ok(await b.create(vxlanLease("10.5.44.0/24", "192.168.77.2"), HOUR), "the other node gets it");
    await a.release(lease); // no longer ours: nothing happens
    assert.is((await b.list())[0]?.attrs.PublicIP, "192.168.77.2");
  });

  withHarness("a lease that is not renewed expires", async (h) => {
    const a = await h.open();
    const lease = await a.create(vxlanLease("10.5.45.0/24", "192.168.77.1"), o.shortTtlMs);
    assert.ok(lease);
    assert.equal(subnetsOf(await a.list()), ["10.5.45.0/24"]);
    await new Promise((r) => setTimeout(r, o.shortTtlMs + o.expiryGraceMs));
    assert.equal(await a.list(), []);
    assert.ok(await (await h.open()).create(vxlanLease("10.5.45.0/24", "192.168.77.2"), HOUR), "free again");
  });

  withHarness("a dual-stack lease keeps both subnets under one key", async (h) => {
    const a = await h.open();
    const dual = { ...vxlanLease("10.5.48.0/24", "192.168.77.1"), ipv6Subnet: "fc00:0:0:48::/64" };
    assert.ok(await a.create(dual, HOUR));
    const [l] = await (await h.open()).list();
    assert.is(l?.subnet, "10.5.48.0/24");
    assert.is(l?.ipv6Subnet, "fc00:0:0:48::/64");
  });

  withHarness("renew after the lease expired rejects with LeaseLostError (re-acquire instead)", async (h) => {
    const a = await h.open();
    const lease = await a.create(vxlanLease("10.5.49.0/24", "192.168.77.1"), o.shortTtlMs);
    assert.ok(lease);
    await new Promise((r) => setTimeout(r, o.shortTtlMs + o.expiryGraceMs));
    const err = await a.renew(lease, HOUR).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, LeaseLostError);
  });

  withHarness("after close, a watch calls nobody", async (h) => {
    const a = await h.open();
    const b = await h.open();
    let calls = 0;
    const w = new WatchLog(a);
    await w.next(() => true, 10_000, "the first set");
    a.watch(
      () => {
        calls++;
      },
      () => undefined,
    );
    await a.close();
    calls = 0;
    assert.ok(await b.create(vxlanLease("10.5.50.0/24", "192.168.77.2"), HOUR));
    await new Promise((r) => setTimeout(r, 500));
    assert.is(calls, 0);
  });

  withHarness("networkConfig answers the stored document, or undefined when there is none", async (h) => {
    const a = await h.open();
    assert.is(await a.networkConfig(), undefined);
    if (!h.writeConfig) return;
    const doc = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}';
    await h.writeConfig(doc);
    assert.is(await a.networkConfig(), doc);
  });

  t.run();
}
