import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encodeLeaseAttrs, type Lease, type LeaseAttrs, subnetKey } from "../../daemon/lease.js";
import { LeaseLostError, type SubnetStore } from "../../daemon/store/store.js";

/**
 * The SubnetStore semantics every store must have, run against a factory (the file store in
 * test/unit/daemon-store-file.test.ts; the etcd store against a real etcd). Each store instance a test
 * opens stands for one daemon; all of a world's instances share one backing store.
 *
 *   storeContract("file", async () => ({ open, putRaw, deleteKey, destroy, ttlMs })).run();
 */
export interface StoreWorld {
  /** A new client of the same backing store (another daemon). */
  open(): Promise<SubnetStore>;
  /** Writes a value under a subnet key by hand, without a TTL (an operator's reservation). */
  putRaw(key: string, value: string): Promise<void>;
  /** Deletes a key by hand (`rm`, `etcdctl del`). */
  deleteKey(key: string): Promise<void>;
  /** A TTL the store honours and a test can wait out (etcd rounds small TTLs up). */
  shortTtlMs: number;
  destroy(): Promise<void>;
}

const DAY = 24 * 3600e3;

const attrs = (ip: string, mac = "aa:bb:cc:00:00:01"): LeaseAttrs => ({
  PublicIP: ip,
  PublicIPv6: null,
  BackendType: "vxlan",
  BackendData: { VNI: 1, VtepMAC: mac },
});

const lease = (subnet: string, ip: string, extra: Partial<Lease> = {}): Lease => ({
  subnet,
  attrs: attrs(ip),
  ...extra,
});

/** Polls `cond` (no timing is asserted: the deadline only bounds a failing test). */
async function until<T>(
  what: string,
  cond: () => Promise<T | undefined> | T | undefined,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const bySubnet = (leases: Lease[], subnet: string) => leases.find((l) => l.subnet === subnet);

export function storeContract(name: string, makeWorld: () => Promise<StoreWorld>) {
  const t = suite<{ world: StoreWorld; stores: SubnetStore[] }>(`SubnetStore contract: ${name}`, {
    world: undefined as unknown as StoreWorld,
    stores: [],
  });
  t.before.each(async (ctx) => {
    ctx.world = await makeWorld();
    ctx.stores = [];
  });
  t.after.each(async (ctx) => {
    for (const s of ctx.stores) await s.close();
    await ctx.world.destroy();
  });
  const open = async (ctx: { world: StoreWorld; stores: SubnetStore[] }) => {
    const s = await ctx.world.open();
    ctx.stores.push(s);
    return s;
  };

  t(
    "create takes a free subnet with an expiration; a held one is refused; list shows the holder",
    async (ctx) => {
      const a = await open(ctx);
      const b = await open(ctx);
      const before = Date.now();
      const got = await a.create(lease("10.5.1.0/24", "192.0.2.1"), DAY);
      assert.ok(got, "the free subnet is taken");
      assert.is(got.subnet, "10.5.1.0/24");
      assert.equal(got.attrs, attrs("192.0.2.1"));
      assert.ok(
        got.expiration !== undefined && got.expiration >= before + DAY - 5000,
        "expires a TTL from now",
      );
      assert.is(await b.create(lease("10.5.1.0/24", "192.0.2.2"), DAY), undefined, "held: refused");
      const all = await b.list();
      assert.is(all.length, 1);
      assert.is(all[0]?.attrs.PublicIP, "192.0.2.1");
      assert.is(all[0]?.subnet, "10.5.1.0/24");
    },
  );

  t("a dual-stack lease keeps both subnets", async (ctx) => {
    const a = await open(ctx);
    await a.create(lease("10.5.2.0/24", "192.0.2.1", { ipv6Subnet: "fc00:0:0:2::/64" }), DAY);
    const [l] = await a.list();
    assert.is(l?.subnet, "10.5.2.0/24");
    assert.is(l?.ipv6Subnet, "fc00:0:0:2::/64");
  });

  t("N daemons racing for one subnet: exactly one wins, and the store holds its value", async (ctx) => {
    const n = 8;
    const stores = await Promise.all(Array.from({ length: n }, () => open(ctx)));
    const results = await Promise.all(
      stores.map((s, i) => s.create(lease("10.5.3.0/24", `192.0.2.${i + 1}`), DAY)),
    );
    const winners = results.filter((r) => r !== undefined);
    assert.is(winners.length, 1, "one winner");
    const all = await stores[0]!.list();
    assert.is(all.length, 1);
    assert.is(all[0]?.attrs.PublicIP, winners[0]?.attrs.PublicIP);
  });

  t("renew extends the lease and writes the node's current attributes (same PublicIP)", async (ctx) => {
    const a = await open(ctx);
    const got = (await a.create(lease("10.5.4.0/24", "192.0.2.1"), 60_000))!;
    const moved: Lease = { ...got, attrs: attrs("192.0.2.1", "aa:bb:cc:00:00:99") };
    const renewed = await a.renew(moved, DAY);
    assert.ok(renewed.expiration! > got.expiration!, "later expiration");
    const [l] = await (await open(ctx)).list();
    assert.equal(l?.attrs, attrs("192.0.2.1", "aa:bb:cc:00:00:99"));
    // A lease read back from the store (a restart) renews as well.
    const again = await (await open(ctx)).renew(l!, DAY);
    assert.is(again.subnet, "10.5.4.0/24");
  });

  t("renew of a key deleted by hand: LeaseLostError, and nothing is recreated", async (ctx) => {
    const a = await open(ctx);
    const got = (await a.create(lease("10.5.5.0/24", "192.0.2.1"), DAY))!;
    await ctx.world.deleteKey(subnetKey(got));
    try {
      await a.renew(got, DAY);
      assert.unreachable("renewed a deleted lease");
    } catch (err) {
      assert.instance(err, LeaseLostError);
    }
    assert.equal(await a.list(), []);
  });

  t("renew of a key now holding another node's value: LeaseLostError, their value untouched", async (ctx) => {
    const a = await open(ctx);
    const b = await open(ctx);
    const mine = (await a.create(lease("10.5.6.0/24", "192.0.2.1"), DAY))!;
    await ctx.world.deleteKey(subnetKey(mine));
    const theirs = await b.create(lease("10.5.6.0/24", "192.0.2.2"), DAY);
    assert.ok(theirs, "the other node takes the freed subnet");
    try {
      await a.renew(mine, DAY);
      assert.unreachable("overwrote another node's lease");
    } catch (err) {
      assert.instance(err, LeaseLostError);
    }
    const [l] = await a.list();
    assert.is(l?.attrs.PublicIP, "192.0.2.2");
  });

  t(
    "a reservation (no TTL) is listed without expiration, is never given one, and holds its subnet",
    async (ctx) => {
      const a = await open(ctx);
      const b = await open(ctx);
      await ctx.world.putRaw("10.5.7.0-24", encodeLeaseAttrs({ PublicIP: "192.0.2.1", PublicIPv6: null }));
      const [r] = await a.list();
      assert.ok(r, "listed");
      assert.is(r.expiration, undefined);
      const renewed = await a.renew({ ...r, attrs: attrs("192.0.2.1") }, DAY);
      assert.is(renewed.expiration, undefined, "renew keeps it a reservation");
      const [after] = await b.list();
      assert.is(after?.expiration, undefined);
      assert.is(after?.attrs.BackendType, "vxlan", "it carries the node's attributes");
      assert.is(await b.create(lease("10.5.7.0/24", "192.0.2.2"), DAY), undefined, "reserved: refused");
      await new Promise((r) => setTimeout(r, ctx.world.shortTtlMs + 500));
      assert.ok(bySubnet(await b.list(), "10.5.7.0/24"), "still there after a short TTL");
    },
  );

  t("an expired lease leaves the list and its subnet can be taken again", async (ctx) => {
    const a = await open(ctx);
    const b = await open(ctx);
    await a.create(lease("10.5.8.0/24", "192.0.2.1"), ctx.world.shortTtlMs);
    await until("the lease to expire", async () => bySubnet(await b.list(), "10.5.8.0/24") === undefined);
    const got = await until("the subnet to be free", () => b.create(lease("10.5.8.0/24", "192.0.2.2"), DAY));
    assert.is(got.attrs.PublicIP, "192.0.2.2");
  });

  t("renew after the lease expired: LeaseLostError (re-acquire instead)", async (ctx) => {
    const a = await open(ctx);
    const got = (await a.create(lease("10.5.9.0/24", "192.0.2.1"), ctx.world.shortTtlMs))!;
    await until("the lease to expire", async () => bySubnet(await a.list(), "10.5.9.0/24") === undefined);
    try {
      await a.renew(got, DAY);
      assert.unreachable("renewed an expired lease");
    } catch (err) {
      assert.instance(err, LeaseLostError);
    }
  });

  t("watch delivers the whole set at once, then again after every change", async (ctx) => {
    const a = await open(ctx);
    const b = await open(ctx);
    await a.create(lease("10.5.10.0/24", "192.0.2.1"), DAY);
    const sets: Lease[][] = [];
    const errors: Error[] = [];
    const stop = a.watch(
      (l) => sets.push(l),
      (e) => errors.push(e),
    );
    try {
      await until("the first set", () => sets.length > 0);
      assert.equal(
        sets[0]!.map((l) => l.subnet),
        ["10.5.10.0/24"],
      );
      const theirs = (await b.create(lease("10.5.11.0/24", "192.0.2.2"), DAY))!;
      const withB = await until("a set with the new lease", () =>
        sets.find((s) => bySubnet(s, "10.5.11.0/24") && bySubnet(s, "10.5.10.0/24")),
      );
      assert.is(bySubnet(withB, "10.5.11.0/24")?.attrs.PublicIP, "192.0.2.2");
      await b.release(theirs);
      await until("a set without the released lease", () => {
        const last = sets.at(-1)!;
        return !bySubnet(last, "10.5.11.0/24") && bySubnet(last, "10.5.10.0/24") !== undefined;
      });
      await ctx.world.deleteKey("10.5.10.0-24");
      await until("a set without the deleted lease", () => sets.at(-1)!.length === 0);
      assert.equal(errors, []);
    } finally {
      stop();
    }
  });

  t("release removes only this node's lease", async (ctx) => {
    const a = await open(ctx);
    const b = await open(ctx);
    const mine = (await a.create(lease("10.5.12.0/24", "192.0.2.1"), DAY))!;
    await b.release({ ...mine, attrs: attrs("192.0.2.2") });
    assert.ok(bySubnet(await a.list(), "10.5.12.0/24"), "another node's release does nothing");
    await a.release(mine);
    assert.is(bySubnet(await a.list(), "10.5.12.0/24"), undefined);
  });

  t("after close, a watch delivers nothing more", async (ctx) => {
    const a = await open(ctx);
    const b = await open(ctx);
    const sets: Lease[][] = [];
    a.watch(
      (l) => sets.push(l),
      () => undefined,
    );
    await until("the first set", () => sets.length > 0);
    await a.close();
    const n = sets.length;
    await b.create(lease("10.5.13.0/24", "192.0.2.2"), DAY);
    await new Promise((r) => setTimeout(r, 300));
    assert.is(sets.length, n);
  });

  return t;
}
