import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encodeLeaseAttrs, type Lease, type LeaseAttrs } from "../../daemon/lease.js";
import { LeaseManager, type LeaseManagerOptions } from "../../daemon/lease-manager.js";
import { type NetworkConfig, parseNetConf } from "../../daemon/net-conf.js";
import { FileStore } from "../../daemon/store/file.js";
import { StoreUnavailableError, type SubnetStore } from "../../daemon/store/store.js";
import { type CapturedLog, captureLog } from "../helpers/capture-log.js";
import { FakeClock } from "../helpers/fake-clock.js";

const HOUR = 3600e3;
const DAY = 24 * HOUR;

interface Ctx {
  dir: string;
  clock: FakeClock;
  cfg: NetworkConfig;
  store: FileStore;
  logs: CapturedLog;
  managers: LeaseManager[];
}

const t = suite<Ctx>("lease manager", {} as Ctx);

t.before.each(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "weft-lm-"));
  ctx.clock = new FakeClock();
  ctx.cfg = await parseNetConf('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
  ctx.store = storeOf(ctx);
  ctx.logs = captureLog();
  ctx.managers = [];
});

t.after.each((ctx) => {
  for (const m of ctx.managers) m.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

const storeOf = (ctx: Ctx) => new FileStore({ dir: ctx.dir, now: () => ctx.clock.now() });

const me: LeaseAttrs = { PublicIP: "192.0.2.1", PublicIPv6: null, BackendType: "host-gw" };
const other = (ip: string): LeaseAttrs => ({ PublicIP: ip, PublicIPv6: null, BackendType: "host-gw" });

function manager(ctx: Ctx, o: Partial<LeaseManagerOptions> = {}): LeaseManager {
  const m = new LeaseManager({
    store: ctx.store,
    config: ctx.cfg,
    attrs: me,
    ttlMs: DAY,
    renewMarginMs: HOUR,
    log: ctx.logs.log,
    clock: ctx.clock,
    random: () => 0,
    ...o,
  });
  ctx.managers.push(m);
  return m;
}

/** Waits (in real time, bounded) for work the fake clock started to finish. */
async function until<T>(
  what: string,
  cond: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fileOf = (ctx: Ctx, key: string) => JSON.parse(readFileSync(join(ctx.dir, key), "utf8"));

/** A store whose calls fail as unreachable while `down` is set. */
function flaky(inner: SubnetStore): SubnetStore & { down: boolean } {
  const s = {
    down: false,
    name: inner.name,
    description: inner.description,
    gate<T>(f: () => Promise<T>): Promise<T> {
      return s.down ? Promise.reject(new StoreUnavailableError("connection refused")) : f();
    },
    networkConfig: () => s.gate(() => inner.networkConfig()),
    list: () => s.gate(() => inner.list()),
    create: (l: Lease, ttl: number) => s.gate(() => inner.create(l, ttl)),
    renew: (l: Lease, ttl: number) => s.gate(() => inner.renew(l, ttl)),
    release: (l: Lease) => s.gate(() => inner.release(l)),
    watch: inner.watch.bind(inner),
    close: () => inner.close(),
  };
  return s;
}

t(
  "a first start takes a random free subnet among the first 100 (here the first) and logs it",
  async (ctx) => {
    await ctx.store.create({ subnet: "10.244.1.0/24", attrs: other("192.0.2.9") }, DAY);
    const l = await manager(ctx).acquire();
    assert.is(l.subnet, "10.244.2.0/24");
    assert.is(l.expiration, ctx.clock.now() + DAY);
    assert.ok(ctx.logs.has(/^info Picking subnet in range 10\.244\.1\.0 \.\.\. 10\.244\.255\.0$/));
    assert.ok(
      ctx.logs.has(
        /^info Allocated lease \(ip: 10\.244\.2\.0\/24 ipv6: none\) to current node \(192\.0\.2\.1\)$/,
      ),
    );
  },
);

t(
  "a restart gets the node's own lease back by PublicIP, re-written with its current attributes",
  async (ctx) => {
    await ctx.store.create({ subnet: "10.244.7.0/24", attrs: { ...me, BackendType: "vxlan" } }, DAY);
    await ctx.clock.advance(HOUR);
    const l = await manager(ctx, { previous: { subnet: "10.244.9.0/24" } }).acquire();
    assert.is(l.subnet, "10.244.7.0/24", "the lease by PublicIP wins over subnet.env");
    assert.is(fileOf(ctx, "10.244.7.0-24").BackendType, "host-gw");
    assert.is(l.expiration, ctx.clock.now() + DAY, "renewed for a full TTL");
    assert.ok(
      ctx.logs.has(
        /^info Found lease \(ip: 10\.244\.7\.0\/24 ipv6: none\) for current IP \(192\.0\.2\.1\), reusing$/,
      ),
    );
  },
);

t("an own lease outside the config is deleted and another taken", async (ctx) => {
  await ctx.store.create({ subnet: "10.99.7.0/24", attrs: me }, DAY);
  const l = await manager(ctx).acquire();
  assert.is(l.subnet, "10.244.1.0/24");
  assert.equal(
    (await ctx.store.list()).map((x) => x.subnet),
    ["10.244.1.0/24"],
  );
  assert.ok(ctx.logs.has(/but not compatible with current config, deleting$/));
});

t("else the subnet of the existing subnet.env, when free and inside the config", async (ctx) => {
  const l = await manager(ctx, { previous: { subnet: "10.244.42.0/24" } }).acquire();
  assert.is(l.subnet, "10.244.42.0/24");
  assert.ok(ctx.logs.has(/^info Found previously leased subnet \(10\.244\.42\.0\/24\), reusing$/));
});

t("subnet.env's subnet held by another node, or outside the config: a free one instead", async (ctx) => {
  await ctx.store.create({ subnet: "10.244.42.0/24", attrs: other("192.0.2.9") }, DAY);
  assert.is(
    (await manager(ctx, { previous: { subnet: "10.244.42.0/24" } }).acquire()).subnet,
    "10.244.1.0/24",
  );
  rmSync(join(ctx.dir, "10.244.1.0-24"));
  assert.is((await manager(ctx, { previous: { subnet: "10.99.0.0/24" } }).acquire()).subnet, "10.244.1.0/24");
  assert.ok(
    ctx.logs.has(/^error Found previously leased subnet \(10\.99\.0\.0\/24\) that is not compatible/),
  );
});

t("a creation lost to another node is retried with a fresh view of the store", async (ctx) => {
  const rival = storeOf(ctx);
  let raced = false;
  const racing: SubnetStore = Object.assign(Object.create(ctx.store), {
    create: async (l: Lease, ttl: number) => {
      if (!raced) {
        raced = true;
        await rival.create({ ...l, attrs: other("192.0.2.9") }, ttl);
      }
      return ctx.store.create(l, ttl);
    },
  });
  const l = await manager(ctx, { store: racing }).acquire();
  assert.ok(raced);
  assert.is(l.subnet, "10.244.2.0/24");
  assert.is(fileOf(ctx, "10.244.1.0-24").PublicIP, "192.0.2.9");
});

t("renewal at expiry minus the margin, as a compare-and-swap of this node's value", async (ctx) => {
  const m = manager(ctx);
  const l = await m.acquire();
  m.start({ onLease: () => undefined, onStatus: () => undefined });
  assert.equal(ctx.clock.pending, [DAY - HOUR]);
  await ctx.clock.advance(DAY - HOUR);
  const renewed = await until("the renewal", () => m.lease !== l && m.lease);
  assert.is(renewed.subnet, l.subnet);
  assert.is(renewed.expiration, ctx.clock.now() + DAY);
  assert.is(Date.parse(fileOf(ctx, "10.244.1.0-24").Expiration), renewed.expiration);
  assert.ok(ctx.logs.has(/^info Lease renewed, new expiration: /));
  await until("the next renewal to be scheduled", () => ctx.clock.pending[0] === DAY - HOUR);
});

t("a lease deleted by hand is re-acquired in process with the same subnet", async (ctx) => {
  const m = manager(ctx);
  const l = await m.acquire();
  const got: Lease[] = [];
  m.start({ onLease: (x) => got.push(x), onStatus: () => undefined });
  rmSync(join(ctx.dir, "10.244.1.0-24"));
  m.observe(await ctx.store.list());
  const back = await until("the re-acquired lease", () => got[0]);
  assert.is(back.subnet, l.subnet);
  assert.is(m.status.changed, undefined);
  assert.is(m.status.problem, undefined);
  assert.is(fileOf(ctx, "10.244.1.0-24").PublicIP, "192.0.2.1");
  assert.ok(ctx.logs.has(/^error Lease for 10\.244\.1\.0\/24 lost: it is gone from the store/));
  assert.ok(ctx.logs.has(/^warn Lease for 10\.244\.1\.0\/24 re-acquired: the subnet is unchanged$/));
});

t("another node's value on the key: a new subnet, said loudly, kept in the status", async (ctx) => {
  const m = manager(ctx);
  await m.acquire();
  const got: Array<[Lease, Lease]> = [];
  m.start({ onLease: (x, prev) => got.push([x, prev]), onStatus: () => undefined });
  writeFileSync(join(ctx.dir, "10.244.1.0-24"), encodeLeaseAttrs(other("192.0.2.9")));
  m.observe(await ctx.store.list());
  const [now, before] = await until("the new lease", () => got[0]);
  assert.is(before.subnet, "10.244.1.0/24");
  assert.is(now.subnet, "10.244.2.0/24");
  assert.equal(m.status.changed, {
    from: "10.244.1.0/24",
    to: "10.244.2.0/24",
    at: ctx.clock.now(),
    why: "10.244.1.0/24 is now leased to 192.0.2.9",
  });
  assert.ok(
    ctx.logs.has(
      /^error SUBNET CHANGED: this node's pod subnet is now 10\.244\.2\.0\/24, no longer 10\.244\.1\.0\/24/,
    ),
  );
  assert.is(fileOf(ctx, "10.244.1.0-24").PublicIP, "192.0.2.9", "theirs untouched");
});

t("a renewal that finds another node's value is a loss, never an overwrite", async (ctx) => {
  const m = manager(ctx);
  await m.acquire();
  const got: Lease[] = [];
  m.start({ onLease: (x) => got.push(x), onStatus: () => undefined });
  writeFileSync(join(ctx.dir, "10.244.1.0-24"), encodeLeaseAttrs(other("192.0.2.9")));
  await ctx.clock.advance(DAY - HOUR);
  await until("the new lease", () => got[0]);
  assert.is(fileOf(ctx, "10.244.1.0-24").PublicIP, "192.0.2.9");
  assert.ok(ctx.logs.has(/lost: lease 10\.244\.1\.0-24 now belongs to 192\.0\.2\.9/));
});

t(
  "store unreachable: renewals retry, the lease stays in use, expiry is reported, then it comes back",
  async (ctx) => {
    const store = flaky(ctx.store);
    const m = manager(ctx, { store });
    const l = await m.acquire();
    const got: Lease[] = [];
    m.start({ onLease: (x) => got.push(x), onStatus: () => undefined });
    store.down = true;
    await ctx.clock.advance(DAY - HOUR);
    await until("a failed renewal", () => ctx.logs.has(/Error renewing lease \(trying again in 60s\)/));
    assert.is(m.lease, l, "still the last known lease");
    await ctx.clock.advance(HOUR + 60e3);
    await until("the expiry to be reported", () => m.status.unreachableSince !== undefined);
    assert.is(m.status.unreachableSince, l.expiration);
    assert.is(m.lease, l, "still programmed from the last known lease");
    store.down = false;
    await ctx.clock.advance(60e3);
    const back = await until("the lease back", () => got[0]);
    assert.is(back.subnet, l.subnet, "same subnet after the outage");
    assert.is(m.status.unreachableSince, undefined);
  },
);

t("a reservation (no expiration) is reused, never renewed, never given a TTL", async (ctx) => {
  writeFileSync(
    join(ctx.dir, "10.244.77.0-24"),
    encodeLeaseAttrs({ PublicIP: "192.0.2.1", PublicIPv6: null }),
  );
  const m = manager(ctx);
  const l = await m.acquire();
  m.start({ onLease: () => undefined, onStatus: () => undefined });
  assert.is(l.subnet, "10.244.77.0/24");
  assert.is(l.expiration, undefined);
  assert.equal(ctx.clock.pending, [], "no renewal scheduled");
  assert.is(fileOf(ctx, "10.244.77.0-24").Expiration, undefined);
  assert.is(fileOf(ctx, "10.244.77.0-24").BackendType, "host-gw", "but it advertises the backend");
});

t("out of subnets: a message with the counts, retried until a subnet frees up", async (ctx) => {
  ctx.cfg = await parseNetConf('{"Network":"10.0.0.0/28","SubnetLen":30}');
  for (const [i, s] of ["10.0.0.4/30", "10.0.0.8/30", "10.0.0.12/30"].entries())
    await ctx.store.create({ subnet: s, attrs: other(`192.0.2.${10 + i}`) }, DAY);
  const m = manager(ctx);
  const pending = m.acquire();
  await until("the message", () => m.status.problem);
  assert.is(
    m.status.problem,
    "failed to acquire lease: out of subnets: all 3 /30 subnets in 10.0.0.4/30 .. 10.0.0.12/30 are leased (3 used, 0 free; 3 leases in the store)",
  );
  assert.ok(ctx.logs.has(/^error failed to acquire lease: out of subnets: .* \(retrying\)$/));
  rmSync(join(ctx.dir, "10.0.0.8-30"));
  await ctx.clock.advance(1000);
  assert.is((await pending).subnet, "10.0.0.8/30");
  assert.is(m.status.problem, undefined);
});

t("store unreachable at start: retried with backoff, then the lease is taken", async (ctx) => {
  const store = flaky(ctx.store);
  store.down = true;
  const m = manager(ctx, { store });
  const pending = m.acquire();
  await until("a retry message", () =>
    ctx.logs.has(/^warn failed to acquire lease: connection refused \(retrying\)$/),
  );
  await ctx.clock.advance(1000);
  await ctx.clock.advance(2000);
  store.down = false;
  await ctx.clock.advance(4000);
  assert.is((await pending).subnet, "10.244.1.0/24");
  assert.is(
    ctx.logs.lines.filter((l) => l.startsWith("warn failed to acquire")).length,
    1,
    "identical retry lines are rate-limited",
  );
});

t("stop() ends a pending acquisition without a lease", async (ctx) => {
  const store = flaky(ctx.store);
  store.down = true;
  const m = manager(ctx, { store });
  const pending = m.acquire().then(
    () => "acquired",
    (e: Error) => e.message,
  );
  await until("a retry", () => m.status.problem);
  m.stop();
  assert.is(await pending, "weftd is stopping");
});

t.run();
