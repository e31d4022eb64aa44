import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encodeLeaseAttrs, type Lease, subnetKey } from "../../daemon/lease.js";
import { createEtcdStore, type EtcdStoreOptions } from "../../daemon/store/etcd.js";
import { LeaseLostError, StoreUnavailableError, type SubnetStore } from "../../daemon/store/store.js";
import { Logger } from "../../shared/log.js";
import { freePort, TestEtcd } from "../helpers/etcd.js";
import { uniqueName } from "../helpers/names.js";
import { storeContract, subnetsOf, vxlanLease, WatchLog } from "../helpers/store-contract.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * weftd's etcd store against a real etcd (Debian's etcd-server): the store contract, flanneld's exact
 * layout both ways, TLS and auth, and the faults flanneld handles badly (anchors 10.1): an unreachable
 * or silent etcd, a restart under a running watch, compaction, a lease revoked by hand.
 */

const HOUR = 3_600_000;
const logDir = mkdtempSync(join(tmpdir(), "weft-etcd-log-"));
process.on("exit", () => rmSync(logDir, { recursive: true, force: true }));

/** A logger writing to a file of its own (warnings included), quiet on stderr. */
function testLog(): { log: Logger; read: () => string } {
  const file = join(logDir, `${uniqueName("log")}.log`);
  return {
    log: new Logger({ component: "weftd", file, fileLevel: "debug", stderrLevel: "error" }),
    read: () => {
      try {
        return readFileSync(file, "utf8");
      } catch {
        return "";
      }
    },
  };
}

function testPrefix(): string {
  return `/weft-test/${uniqueName("n")}/network`;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: Error) => e,
  );
}

// ---------------------------------------------------------------------------------------------------
// The store contract (test/helpers/store-contract.ts), one prefix per test on one etcd.

let contractEtcd: TestEtcd | undefined;
storeContract(
  "etcd",
  async () => {
    const etcd = contractEtcd!;
    const prefix = testPrefix();
    const stores: SubnetStore[] = [];
    const keyOf = (l: Lease) => `${prefix}/subnets/${subnetKey(l)}`;
    return {
      async open() {
        const s = createEtcdStore({ endpoints: [etcd.endpoint], prefix, log: testLog().log });
        stores.push(s);
        return s;
      },
      async writeRaw(lease, ttlMs) {
        const id = ttlMs === undefined ? undefined : await etcd.grant(Math.ceil(ttlMs / 1000));
        await etcd.put(keyOf(lease), encodeLeaseAttrs(lease.attrs), id);
      },
      async deleteRaw(lease) {
        await etcd.etcdctl(["del", keyOf(lease)]);
      },
      async writeConfig(doc) {
        await etcd.put(`${prefix}/config`, doc);
      },
      async dispose() {
        await Promise.all(stores.map((s) => s.close()));
        await etcd.etcdctl(["del", "--prefix", prefix]);
      },
    };
  },
  {
    setup: async () => {
      contractEtcd = await TestEtcd.start();
    },
    teardown: async () => {
      await contractEtcd?.stop();
    },
    // etcd's shortest lease is ~2 s (1.5 x election timeout, rounded up); expiry is checked every 500 ms.
    shortTtlMs: 2000,
    expiryGraceMs: 2500,
  },
);

// ---------------------------------------------------------------------------------------------------
// etcd specifics.

const t = suite("etcd store");
let etcd: TestEtcd;
const open: SubnetStore[] = [];

t.before(async () => {
  etcd = await TestEtcd.start();
});
t.after(async () => {
  await Promise.all(open.map((s) => s.close()));
  await etcd?.stop();
});

function store(o: Partial<EtcdStoreOptions> & { prefix: string }): SubnetStore {
  const s = createEtcdStore({ endpoints: [etcd.endpoint], log: testLog().log, ...o });
  open.push(s);
  return s;
}

t(
  "keys and values are flanneld's: <prefix>/subnets/10.5.34.0-24 and its lease JSON, on an etcd lease",
  async () => {
    const prefix = testPrefix();
    const s = store({ prefix: `${prefix}/` }); // flanneld joins paths: a trailing slash changes nothing
    const mac = "de:ad:be:ef:00:01";
    assert.ok(await s.create(vxlanLease("10.5.34.0/24", "192.168.77.1", mac), HOUR));
    const dual: Lease = {
      subnet: "10.5.35.0/24",
      ipv6Subnet: "fc00:0:0:22::/64",
      attrs: {
        PublicIP: "192.168.77.2",
        PublicIPv6: "fd00::2",
        BackendType: "vxlan",
        BackendData: { VNI: 1, VtepMAC: mac },
        BackendV6Data: { VNI: 1, VtepMAC: "de:ad:be:ef:00:02" },
      },
    };
    assert.ok(await s.create(dual, HOUR));
    const kvs = await etcd.getPrefix(prefix);
    assert.equal(
      kvs.map((kv) => [kv.key, kv.value]),
      [
        [
          `${prefix}/subnets/10.5.34.0-24`,
          `{"PublicIP":"192.168.77.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
        ],
        [
          `${prefix}/subnets/10.5.35.0-24&fc00:0:0:22::-64`,
          `{"PublicIP":"192.168.77.2","PublicIPv6":"fd00::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"},"BackendV6Data":{"VNI":1,"VtepMAC":"de:ad:be:ef:00:02"}}`,
        ],
      ],
    );
    for (const kv of kvs) {
      assert.is.not(kv.lease, "0", "each key hangs on an etcd lease");
      const ttl = await etcd.etcdctl(["lease", "timetolive", BigInt(kv.lease).toString(16)]);
      assert.match(ttl, /granted with TTL\(3600s\), remaining\((35\d\d|3600)s\)/);
    }
    assert.equal(subnetsOf(await store({ prefix }).list()), ["10.5.34.0/24", "10.5.35.0/24"]);
  },
);

t("leases flanneld wrote are read back; keys flanneld would skip are skipped with one warning", async () => {
  const prefix = testPrefix();
  const lease = await etcd.grant(86_400);
  const vxlan =
    '{"PublicIP":"192.168.80.240","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"6e:1f:5a:9b:27:c0"}}';
  await etcd.put(`${prefix}/subnets/10.244.2.0-24`, vxlan, lease);
  await etcd.put(
    `${prefix}/subnets/10.244.3.0-24`,
    '{"PublicIP":"192.168.80.241","PublicIPv6":null,"BackendType":"host-gw"}',
    lease,
  );
  await etcd.put(`${prefix}/subnets/10.244.9.0-24`, '{"PublicIP":"192.168.80.249","PublicIPv6":null}'); // reservation
  await etcd.put(`${prefix}/subnets/not-a-subnet`, vxlan);
  await etcd.put(`${prefix}/subnets/10.244.4.0-24`, "not json");
  await etcd.put(`${prefix}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  const { log, read } = testLog();
  const s = store({ prefix, log });
  assert.is(await s.networkConfig(), '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  const leases = await s.list();
  await s.list();
  assert.equal(
    leases.map((l) => ({ ...l, expiration: l.expiration === undefined ? "none" : "set" })),
    [
      {
        subnet: "10.244.2.0/24",
        attrs: {
          PublicIP: "192.168.80.240",
          PublicIPv6: null,
          BackendType: "vxlan",
          BackendData: { VNI: 1, VtepMAC: "6e:1f:5a:9b:27:c0" },
        },
        expiration: "set",
      },
      {
        subnet: "10.244.3.0/24",
        attrs: { PublicIP: "192.168.80.241", PublicIPv6: null, BackendType: "host-gw" },
        expiration: "set",
      },
      {
        subnet: "10.244.9.0/24",
        attrs: { PublicIP: "192.168.80.249", PublicIPv6: null },
        expiration: "none",
      },
    ],
  );
  const exp = leases[0]!.expiration!;
  assert.ok(exp > Date.now() + 86_390_000 && exp <= Date.now() + 86_400_000, "expiry from the lease's TTL");
  const logText = read();
  assert.is(logText.match(/not a subnet key/g)?.length, 1, logText);
  assert.is(logText.match(/unreadable lease value/g)?.length, 1, logText);
  assert.match(logText, `${prefix}/subnets/not-a-subnet`);
});

t(
  "renewal keeps one etcd lease alive (no new lease, no write) and adopts the node's key after a restart",
  async () => {
    const prefix = testPrefix();
    const key = `${prefix}/subnets/10.5.50.0-24`;
    const mine = vxlanLease("10.5.50.0/24", "192.168.77.5");
    const lease = await store({ prefix }).create(mine, 20_000);
    assert.ok(lease);
    const before = (await etcd.get(key))!;
    await new Promise((r) => setTimeout(r, 2100));
    const renewed = await store({ prefix }).renew(lease, 20_000); // another process: it recognises its PublicIP
    const after = (await etcd.get(key))!;
    assert.is(after.lease, before.lease, "same etcd lease");
    assert.is(after.modRevision, before.modRevision, "no write");
    assert.match(
      await etcd.etcdctl(["lease", "timetolive", BigInt(after.lease).toString(16)]),
      /remaining\((19|20)s\)/,
    );
    assert.ok(renewed.expiration! >= lease.expiration! + 1500);
  },
);

t(
  "renewal with another TTL moves the key to a fresh lease by compare-and-swap and revokes the old one",
  async () => {
    const prefix = testPrefix();
    const key = `${prefix}/subnets/10.5.51.0-24`;
    const s = store({ prefix });
    const lease = await s.create(vxlanLease("10.5.51.0/24", "192.168.77.5"), 20_000);
    assert.ok(lease);
    const old = (await etcd.get(key))!.lease;
    await s.renew(lease, 40_000);
    const now = (await etcd.get(key))!;
    assert.is.not(now.lease, old);
    assert.match(
      await etcd.etcdctl(["lease", "timetolive", BigInt(now.lease).toString(16)]),
      /granted with TTL\(40s\)/,
    );
    assert.match(await etcd.etcdctl(["lease", "timetolive", BigInt(old).toString(16)]), /already expired/);
  },
);

t("a lease revoked by hand: renew rejects with LeaseLostError and does not bring the key back", async () => {
  const prefix = testPrefix();
  const key = `${prefix}/subnets/10.5.52.0-24`;
  const s = store({ prefix });
  const lease = await s.create(vxlanLease("10.5.52.0/24", "192.168.77.5"), HOUR);
  assert.ok(lease);
  await etcd.etcdctl(["lease", "revoke", BigInt((await etcd.get(key))!.lease).toString(16)]);
  const err = await rejection(s.renew(lease, HOUR));
  assert.instance(err, LeaseLostError);
  assert.match(err.message, "10.5.52.0/24");
  assert.is(await etcd.get(key), undefined);
});

t("a reservation stays one: renew publishes the node's attributes on it without a TTL", async () => {
  const prefix = testPrefix();
  const key = `${prefix}/subnets/10.5.53.0-24`;
  await etcd.put(key, '{"PublicIP":"192.168.77.5","PublicIPv6":null}');
  const s = store({ prefix });
  const [reserved] = await s.list();
  assert.ok(reserved);
  const mine = vxlanLease("10.5.53.0/24", "192.168.77.5");
  const renewed = await s.renew({ ...reserved, attrs: mine.attrs }, HOUR);
  assert.is(renewed.expiration, undefined);
  const kv = (await etcd.get(key))!;
  assert.is(kv.lease, "0", "no etcd lease");
  assert.is(kv.value, encodeLeaseAttrs(mine.attrs));
});

t("a lease another node keeps alive (KeepAlive: no key event) never looks expired in the watch", async () => {
  const prefix = testPrefix();
  const holder = store({ prefix });
  const w = new WatchLog(store({ prefix }));
  try {
    let lease = await holder.create(vxlanLease("10.5.55.0/24", "192.168.77.5"), 4000);
    assert.ok(lease);
    const first = await w.next((set) => set.length === 1, 10_000, "the lease");
    const firstEnd = first[0]!.expiration!;
    const until = Date.now() + 9000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1500));
      lease = await holder.renew(lease, 4000);
      const shown = w.last?.[0]?.expiration ?? 0;
      assert.ok(shown > Date.now(), `the watch shows the live lease as expired (${shown - Date.now()} ms)`);
    }
    assert.ok(w.last![0]!.expiration! > firstEnd + 4000, "the watch learned the later ends");
  } finally {
    w.stop();
  }
});

/**
 * Stops watches while other calls are under way, the way a one-shot watch stops from its own callback.
 * etcd3 treats a stream's CANCELLED error as its host failing and closes that host's clients, which cut
 * off calls just started ("Channel closed before call started"); seen first over TLS.
 */
async function stopWatchesUnderLoad(s: SubnetStore, lease: Lease): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await new Promise<void>((resolve, reject) => {
      const stop = s.watch(
        (set) => {
          if (set.length !== 1) return;
          stop();
          Promise.all([s.renew(lease, HOUR), s.list(), s.networkConfig()]).then(() => resolve(), reject);
        },
        () => undefined,
      );
    });
    await Promise.all([s.renew(lease, HOUR), s.list()]);
  }
}

t("stopping a watch leaves the store's other calls alone", async () => {
  const prefix = testPrefix();
  const s = store({ prefix });
  const lease = await s.create(vxlanLease("10.5.54.0/24", "192.168.77.5"), HOUR);
  assert.ok(lease);
  await stopWatchesUnderLoad(s, lease);
});

t(
  "etcd unreachable (connection refused): StoreUnavailableError at once, naming the endpoint and the cause",
  async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const s = store({ prefix: testPrefix(), endpoints: [endpoint], timeoutMs: 2000 });
    const started = Date.now();
    const err = await rejection(s.list());
    assert.ok(Date.now() - started < 2500, `within the deadline (${Date.now() - started} ms)`);
    assert.instance(err, StoreUnavailableError);
    assert.match(err.message, endpoint);
    assert.match(err.message, "2000 ms");
    assert.match(err.message, "ECONNREFUSED");
    const created = await rejection(s.create(vxlanLease("10.5.60.0/24", "192.168.77.1"), HOUR));
    assert.instance(created, StoreUnavailableError);
  },
);

t(
  "etcd silent (accepts, never answers): every call rejects at its deadline with a message that says so",
  async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => {
      sockets.add(s);
      s.on("error", () => undefined);
    });
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, "127.0.0.1", () => r()));
    try {
      const endpoint = `http://127.0.0.1:${port}`;
      const s = store({ prefix: testPrefix(), endpoints: [endpoint], timeoutMs: 1500 });
      for (const call of [
        () => s.list(),
        () => s.networkConfig(),
        () => s.create(vxlanLease("10.5.61.0/24", "192.168.77.1"), HOUR),
      ]) {
        const started = Date.now();
        const err = await rejection(call());
        const took = Date.now() - started;
        assert.ok(took >= 1400 && took < 2500, `rejected at the deadline, took ${took} ms`);
        assert.instance(err, StoreUnavailableError);
        assert.match(err.message, endpoint);
        assert.match(err.message, "1500 ms");
      }
      const w = new WatchLog(s);
      try {
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal(w.sets, []);
        assert.ok(w.errors.length > 0, "the watch reports its trouble");
        assert.instance(w.errors[0], StoreUnavailableError);
        assert.match(w.errors[0]!.message, endpoint);
      } finally {
        w.stop();
      }
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  },
);

t("several endpoints: a dead one is passed over", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const prefix = testPrefix();
  const s = store({ prefix, endpoints: [dead, etcd.endpoint], timeoutMs: 3000 });
  for (let i = 0; i < 6; i++) {
    assert.ok(await s.create(vxlanLease(`10.5.${70 + i}.0/24`, `192.168.77.${i + 1}`), HOUR));
    await s.list();
  }
  assert.is((await s.list()).length, 6);
  assert.is(s.description, `etcd ${dead},${etcd.endpoint}`);
});

t(
  "etcd killed and restarted under a running watch: it resumes and delivers what changed meanwhile",
  async () => {
    const prefix = testPrefix();
    const proxy = await TcpProxy.start(etcd.clientPort);
    const s = store({ prefix, endpoints: [`http://${proxy.address}`], timeoutMs: 2000 });
    const w = new WatchLog(s);
    try {
      const a = await s.create(vxlanLease("10.5.80.0/24", "192.168.77.1"), HOUR);
      assert.ok(a);
      await w.next((set) => set.length === 1, 10_000, "the first lease");
      await proxy.block();
      await etcd.kill();
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(w.errors.length > 0, "the broken watch was reported");
      assert.instance(w.errors[0], StoreUnavailableError);
      await etcd.restart();
      // Changes while the watch is cut off: another node's lease arrives, ours is deleted by hand.
      await etcd.put(
        `${prefix}/subnets/10.5.81.0-24`,
        encodeLeaseAttrs(vxlanLease("10.5.81.0/24", "192.168.77.2").attrs),
        await etcd.grant(3600),
      );
      await etcd.etcdctl(["del", `${prefix}/subnets/10.5.80.0-24`]);
      const setsBefore = w.sets.length;
      await proxy.unblock();
      const now = await w.next(
        (set) => subnetsOf(set).join() === "10.5.81.0/24",
        15_000,
        "the set after the restart",
      );
      assert.is(now[0]!.attrs.PublicIP, "192.168.77.2");
      assert.ok(w.sets.length > setsBefore);
      // And it keeps following.
      await etcd.put(
        `${prefix}/subnets/10.5.82.0-24`,
        encodeLeaseAttrs(vxlanLease("10.5.82.0/24", "192.168.77.3").attrs),
      );
      await w.next((set) => set.length === 2, 10_000, "a later change");
    } finally {
      w.stop();
      await proxy.close();
    }
  },
);

t(
  "compaction behind a cut-off watch: it lists again, hands over the new set and follows from there",
  async () => {
    const prefix = testPrefix();
    const proxy = await TcpProxy.start(etcd.clientPort);
    const { log, read } = testLog();
    const s = store({ prefix, endpoints: [`http://${proxy.address}`], timeoutMs: 2000, log });
    const w = new WatchLog(s);
    try {
      assert.ok(await s.create(vxlanLease("10.5.90.0/24", "192.168.77.1"), HOUR));
      await w.next((set) => set.length === 1, 10_000, "the first lease");
      await proxy.block();
      await etcd.put(
        `${prefix}/subnets/10.5.91.0-24`,
        encodeLeaseAttrs(vxlanLease("10.5.91.0/24", "192.168.77.2").attrs),
      );
      await etcd.etcdctl(["del", `${prefix}/subnets/10.5.90.0-24`]);
      for (let i = 0; i < 3; i++) await etcd.put(`/weft-test/churn`, String(i));
      await etcd.etcdctl(["compact", String(await etcd.revision())]);
      await proxy.unblock();
      const now = await w.next(
        (set) => subnetsOf(set).join() === "10.5.91.0/24",
        15_000,
        "the re-listed set",
      );
      assert.is(now[0]!.attrs.PublicIP, "192.168.77.2");
      assert.match(read(), "compaction");
      await etcd.put(
        `${prefix}/subnets/10.5.92.0-24`,
        encodeLeaseAttrs(vxlanLease("10.5.92.0/24", "192.168.77.3").attrs),
      );
      await w.next((set) => set.length === 2, 10_000, "a change after the re-list");
    } finally {
      w.stop();
      await proxy.close();
    }
  },
);

t.run();

// ---------------------------------------------------------------------------------------------------
// TLS with client certificates, and basic auth: each on an etcd of its own.

const sec = suite("etcd store: TLS and auth");

sec("TLS with client certificates: works with them, refused without them or with a stranger's", async () => {
  const tlsEtcd = await TestEtcd.start({ tls: true });
  const stores: SubnetStore[] = [];
  const mk = (o: Partial<EtcdStoreOptions>) => {
    const s = createEtcdStore({
      endpoints: [tlsEtcd.endpoint],
      prefix: "/coreos.com/network",
      log: testLog().log,
      timeoutMs: 3000,
      ...o,
    });
    stores.push(s);
    return s;
  };
  try {
    const files = tlsEtcd.tls!;
    const good = mk({ caFile: files.ca, certFile: files.clientCert, keyFile: files.clientKey });
    assert.ok(await good.create(vxlanLease("10.5.100.0/24", "192.168.77.1"), HOUR));
    assert.equal(subnetsOf(await good.list()), ["10.5.100.0/24"]);
    const w = new WatchLog(good);
    try {
      await w.next((set) => set.length === 1, 10_000, "the set over TLS");
    } finally {
      w.stop();
    }
    assert.match(
      await tlsEtcd.etcdctl(["get", "--prefix", "--keys-only", "/coreos.com/network/subnets"]),
      "10.5.100.0-24",
    );
    const [mine] = await good.list();
    await stopWatchesUnderLoad(good, mine!);

    for (const [what, o] of [
      ["no client certificate", { caFile: files.ca }],
      [
        "a stranger's certificate",
        { caFile: files.ca, certFile: files.strangerCert, keyFile: files.strangerKey },
      ],
      [
        "no CA (the server's certificate is not trusted)",
        { certFile: files.clientCert, keyFile: files.clientKey },
      ],
    ] as const) {
      const started = Date.now();
      const err = await rejection(mk(o).list());
      assert.instance(err, StoreUnavailableError, what);
      assert.match(err.message, tlsEtcd.endpoint, what);
      assert.ok(Date.now() - started < 3500, `${what}: within the deadline`);
    }
    const half = await rejection(
      Promise.resolve().then(() => mk({ caFile: files.ca, certFile: files.clientCert })),
    );
    // A configuration mistake, not an outage: a plain error naming the flag, from the factory itself.
    assert.not.instance(half, StoreUnavailableError);
    assert.match(half.message, "--etcd-keyfile");
  } finally {
    await Promise.all(stores.map((s) => s.close()));
    await tlsEtcd.stop();
  }
});

sec("basic auth: the right password works, a wrong one is refused with etcd's reason", async () => {
  const authEtcd = await TestEtcd.start();
  const stores: SubnetStore[] = [];
  const mk = (password: string) => {
    const s = createEtcdStore({
      endpoints: [authEtcd.endpoint],
      prefix: "/coreos.com/network",
      username: "root",
      password,
      log: testLog().log,
      timeoutMs: 3000,
    });
    stores.push(s);
    return s;
  };
  try {
    await authEtcd.enableAuth("s3cret");
    const good = mk("s3cret");
    assert.ok(await good.create(vxlanLease("10.5.101.0/24", "192.168.77.1"), HOUR));
    const w = new WatchLog(good);
    try {
      await w.next((set) => set.length === 1, 10_000, "the set with auth");
    } finally {
      w.stop();
    }
    const err = await rejection(mk("wrong").list());
    assert.instance(err, StoreUnavailableError);
    assert.match(err.message, /authentication failed/);
    const anonymous = createEtcdStore({
      endpoints: [authEtcd.endpoint],
      prefix: "/coreos.com/network",
      log: testLog().log,
      timeoutMs: 3000,
    });
    stores.push(anonymous);
    assert.instance(await rejection(anonymous.list()), StoreUnavailableError);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
    await authEtcd.stop();
  }
});

sec("basic auth: a watch cut off for longer than etcd's token TTL logs in again and resumes", async () => {
  const authEtcd = await TestEtcd.start({ args: ["--auth-token-ttl=2"] });
  const proxy = await TcpProxy.start(authEtcd.clientPort);
  const prefix = testPrefix();
  const s = createEtcdStore({
    endpoints: [`http://${proxy.address}`],
    prefix,
    username: "root",
    password: "s3cret",
    log: testLog().log,
    timeoutMs: 3000,
  });
  await authEtcd.enableAuth("s3cret");
  const w = new WatchLog(s);
  try {
    await w.next(() => true, 10_000, "the initial set");
    await proxy.block();
    await new Promise((r) => setTimeout(r, 3500)); // the client's token expires meanwhile
    await authEtcd.put(
      `${prefix}/subnets/10.5.102.0-24`,
      encodeLeaseAttrs(vxlanLease("10.5.102.0/24", "192.168.77.2").attrs),
    );
    await proxy.unblock();
    await w.next((set) => set.length === 1, 15_000, "the change, seen with a new token");
  } finally {
    w.stop();
    await s.close();
    await proxy.close();
    await authEtcd.stop();
  }
});

sec.run();

// ---------------------------------------------------------------------------------------------------
// A three-member cluster.

const cl = suite("etcd store: a cluster");

cl(
  "a watch on a member that lost the cluster's leader is told so (WithRequireLeader), and recovers with quorum",
  async () => {
    const members = await TestEtcd.cluster(3);
    const [m0, m1, m2] = members as [TestEtcd, TestEtcd, TestEtcd];
    const prefix = testPrefix();
    const s = createEtcdStore({ endpoints: [m0.endpoint], prefix, log: testLog().log, timeoutMs: 2000 });
    const w = new WatchLog(s);
    try {
      await w.next(() => true, 10_000, "the initial set");
      await Promise.all([m1.kill(), m2.kill()]);
      // m0 is up but alone: without its leader it cannot serve a watch, and must not sit on it silently.
      const until = Date.now() + 10_000;
      while (!w.errors.some((e) => /no leader/.test(e.message)) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        w.errors.some((e) => /no leader/.test(e.message)),
        `the leaderless watch is reported: ${w.errors.map((e) => e.message).join(" | ")}`,
      );
      await m1.restart();
      await m1.put(
        `${prefix}/subnets/10.5.110.0-24`,
        encodeLeaseAttrs(vxlanLease("10.5.110.0/24", "192.168.77.1").attrs),
      );
      await w.next((set) => set.length === 1, 20_000, "the change made once quorum is back");
    } finally {
      w.stop();
      await s.close();
      await Promise.all(members.map((m) => m.stop()));
    }
  },
);

cl.run();
