import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Backend, BackendContext, ExternalInterface } from "../../daemon/backend/backend.js";
import { Daemon, type DaemonDeps, ROUTE_RESYNC_MS } from "../../daemon/daemon.js";
import { type Flags, parseArgs } from "../../daemon/flags.js";
import { readiness } from "../../daemon/health.js";
import { encodeLeaseAttrs, type Lease } from "../../daemon/lease.js";
import type { RulesOptions } from "../../daemon/rules.js";
import { FileStore } from "../../daemon/store/file.js";
import { type CapturedLog, captureLog } from "../helpers/capture-log.js";
import { FakeClock } from "../helpers/fake-clock.js";

/**
 * The daemon's orchestration with stand-ins for the kernel side (interface, backend, rules): what it
 * calls in which order, what it writes, how it reacts to the store. The kernel side has its own tests;
 * test/integration/weftd.test.ts runs the built executable in node namespaces.
 */

class StubBackend implements Backend {
  readonly type = "host-gw" as const;
  reconciles: Array<{ own: Lease; remotes: Lease[] }> = [];
  fail: string | undefined;
  prepared: BackendContext | undefined;
  constructor(private readonly events: string[]) {}
  async prepare(ctx: BackendContext) {
    this.events.push("backend.prepare");
    this.prepared = ctx;
    return { attrs: { BackendType: "host-gw" }, mtu: 1450 };
  }
  async reconcile(own: Lease, remotes: Lease[]) {
    this.events.push("backend.reconcile");
    if (this.fail) throw new Error(this.fail);
    this.reconciles.push({ own, remotes });
  }
  get last() {
    return this.reconciles.at(-1);
  }
}

interface Ctx {
  dir: string;
  storeDir: string;
  subnetFile: string;
  netConf: string;
  events: string[];
  rules: RulesOptions[];
  backend: StubBackend;
  logs: CapturedLog;
  clock: FakeClock;
  running: Array<{ daemon: Daemon; done: Promise<number> }>;
}

const t = suite<Ctx>("daemon", {} as Ctx);

t.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "weft-daemon-"));
  ctx.storeDir = join(ctx.dir, "leases");
  ctx.subnetFile = join(ctx.dir, "run", "subnet.env");
  ctx.netConf = join(ctx.dir, "net-conf.json");
  writeFileSync(ctx.netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
  ctx.events = [];
  ctx.rules = [];
  ctx.backend = new StubBackend(ctx.events);
  ctx.logs = captureLog();
  ctx.clock = new FakeClock(Date.now());
  ctx.running = [];
});

t.after.each(async (ctx) => {
  for (const r of ctx.running) {
    r.daemon.stop();
    await r.done;
  }
  rmSync(ctx.dir, { recursive: true, force: true });
});

function flagsOf(ctx: Ctx, extra: string[] = []): Flags {
  const r = parseArgs(
    [
      `--store-dir=${ctx.storeDir}`,
      `--subnet-file=${ctx.subnetFile}`,
      `--net-config-path=${ctx.netConf}`,
      "--cni-socket=",
      ...extra,
    ],
    {},
  );
  if (r.action !== "run") throw new Error("flags");
  return r.flags;
}

const EXT: ExternalInterface = {
  name: "eth0",
  index: 2,
  mtu: 1500,
  ifaceAddr: "192.0.2.1",
  publicIp: "192.0.2.1",
};

function deps(ctx: Ctx, o: Partial<DaemonDeps> = {}): DaemonDeps {
  return {
    findExternalInterface: async () => {
      ctx.events.push("findExternalInterface");
      return EXT;
    },
    openStore: async (f) => {
      ctx.events.push("openStore");
      return new FileStore({ dir: f.storeDir, rescanMs: 200 });
    },
    createBackend: async () => ctx.backend,
    syncRules: async (r) => {
      ctx.events.push("syncRules");
      ctx.rules.push(r);
    },
    clock: ctx.clock,
    random: () => 0,
    ...o,
  };
}

function start(ctx: Ctx, flags = flagsOf(ctx), d = deps(ctx)) {
  const daemon = new Daemon(flags, d, ctx.logs.log);
  const r = { daemon, done: daemon.run() };
  ctx.running.push(r);
  return r;
}

async function until<T>(
  what: string,
  cond: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const other = (ip: string) => ({ PublicIP: ip, PublicIPv6: null, BackendType: "host-gw" });

t("flanneld's order; subnet.env is written last, in flanneld's format", async (ctx) => {
  const { daemon } = start(ctx, flagsOf(ctx, ["--ip-masq"]));
  await until("subnet.env", () => daemon.status.subnetEnvWritten);
  const order = ctx.events.filter((e, i) => ctx.events.indexOf(e) === i);
  assert.equal(order, [
    "findExternalInterface",
    "openStore",
    "backend.prepare",
    "syncRules",
    "backend.reconcile",
  ]);
  assert.is(
    readFileSync(ctx.subnetFile, "utf8"),
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
  // randomFully is left to detection (supported by iptables) unless the flag turns it off.
  const { log: _log, ...rules } = ctx.rules[0]!;
  assert.equal(rules, {
    network: "10.244.0.0/16",
    lease: ctx.backend.last!.own,
    ipMasq: true,
    forwardRules: true,
  });
  assert.equal(JSON.parse(readFileSync(join(ctx.storeDir, "10.244.1.0-24"), "utf8")).BackendType, "host-gw");
  assert.ok(ctx.logs.has(/^info Found network config - Backend type: host-gw$/));
  assert.ok(ctx.logs.has(new RegExp(`^info Wrote subnet file to ${ctx.subnetFile}$`)));
  assert.equal(readiness(daemon.status), { ready: true, reasons: [] });
});

t("other nodes' leases reach the backend as they come and go, logged in flanneld's words", async (ctx) => {
  const { daemon } = start(ctx);
  await until("ready", () => daemon.status.subnetEnvWritten);
  const peer = new FileStore({ dir: ctx.storeDir });
  const theirs = (await peer.create({ subnet: "10.244.9.0/24", attrs: other("192.0.2.9") }, 3600e3))!;
  await until("the peer in a reconcile", () =>
    ctx.backend.last?.remotes.some((l) => l.subnet === "10.244.9.0/24"),
  );
  assert.ok(ctx.logs.has(/^info Subnet added: 10\.244\.9\.0\/24 via 192\.0\.2\.9$/));
  assert.not.ok(
    ctx.backend.last?.remotes.some((l) => l.subnet === "10.244.1.0/24"),
    "own lease is not remote",
  );
  await peer.release(theirs);
  await until("the peer gone", () => ctx.backend.last?.remotes.length === 0);
  assert.ok(ctx.logs.has(/^info Subnet removed: 10\.244\.9\.0\/24$/));
  assert.is(daemon.status.leasesSeen, 1);
});

t("a lease deleted by hand comes back with the same subnet; subnet.env stays", async (ctx) => {
  const { daemon } = start(ctx);
  await until("ready", () => daemon.status.subnetEnvWritten);
  const env = readFileSync(ctx.subnetFile, "utf8");
  rmSync(join(ctx.storeDir, "10.244.1.0-24"));
  await until("the lease file back", () => existsSync(join(ctx.storeDir, "10.244.1.0-24")));
  await until(
    "no problem left",
    () => daemon.status.lease.problem === undefined && daemon.status.lease.lease,
  );
  assert.is(readFileSync(ctx.subnetFile, "utf8"), env);
  assert.is(readiness(daemon.status).ready, true);
});

t(
  "another node's value on the key: a new subnet in subnet.env and an unready /readyz saying why",
  async (ctx) => {
    const { daemon } = start(ctx);
    await until("ready", () => daemon.status.subnetEnvWritten);
    writeFileSync(join(ctx.storeDir, "10.244.1.0-24"), encodeLeaseAttrs(other("192.0.2.9")));
    await until("subnet.env rewritten", () =>
      readFileSync(ctx.subnetFile, "utf8").includes("FLANNEL_SUBNET=10.244.2.1/24"),
    );
    await until("the backend told", () => ctx.backend.last?.own.subnet === "10.244.2.0/24");
    await until("the rules told", () => ctx.rules.at(-1)?.lease.subnet === "10.244.2.0/24");
    const r = readiness(daemon.status);
    assert.is(r.ready, false);
    assert.match(
      r.reasons.join("\n"),
      /the pod subnet changed from 10\.244\.1\.0\/24 to 10\.244\.2\.0\/24 .*10\.244\.1\.0\/24 is now leased to 192\.0\.2\.9/,
    );
    await until("their lease a remote", () =>
      ctx.backend.last?.remotes.some((l) => l.subnet === "10.244.1.0/24"),
    );
    assert.ok(ctx.logs.has(/^info Subnet added: 10\.244\.1\.0\/24 via 192\.0\.2\.9$/));
  },
);

t(
  "a failed reconcile makes /readyz say so until one succeeds; routes are retried every 10 s",
  async (ctx) => {
    const { daemon } = start(ctx);
    await until("ready", () => daemon.status.subnetEnvWritten);
    ctx.backend.fail = "route add failed: Nexthop has invalid gateway";
    const n = ctx.events.length;
    await ctx.clock.advance(ROUTE_RESYNC_MS);
    await until("the failure", () => daemon.status.reconcileError);
    assert.ok(ctx.events.slice(n).includes("backend.reconcile"), "the periodic reconcile ran");
    assert.equal(readiness(daemon.status).reasons, [
      "the last reconcile failed: route add failed: Nexthop has invalid gateway",
    ]);
    assert.is(daemon.status.reconcileErrors, 1);
    ctx.backend.fail = undefined;
    await ctx.clock.advance(ROUTE_RESYNC_MS);
    await until("recovery", () => daemon.status.reconcileError === undefined);
    assert.is(readiness(daemon.status).ready, true);
  },
);

t(
  "no list of leases after the lease is taken: no reconcile against an empty set, not ready until the watch's",
  async (ctx) => {
    await new FileStore({ dir: ctx.storeDir }).create(
      { subnet: "10.244.9.0/24", attrs: other("192.0.2.9") },
      3600e3,
    );
    let lists = 0;
    const d = deps(ctx, {
      openStore: async (f) => {
        const inner = new FileStore({ dir: f.storeDir, rescanMs: 200 });
        return Object.assign(Object.create(inner), {
          // The third list (after the interface's previous lease and the acquisition) fails.
          list: () => (++lists === 3 ? Promise.reject(new Error("connection refused")) : inner.list()),
          watch: inner.watch.bind(inner),
          close: () => inner.close(),
        });
      },
    });
    const { daemon } = start(ctx, flagsOf(ctx), d);
    await until("subnet.env", () => daemon.status.subnetEnvWritten);
    assert.ok(lists >= 3);
    await until("the watch's set reconciled", () => ctx.backend.reconciles.length > 0);
    assert.equal(
      ctx.backend.reconciles.map((r) => r.remotes.map((l) => l.subnet)),
      [["10.244.9.0/24"]],
      "never reconciled without the peer",
    );
    assert.ok(ctx.logs.has(/^warn no list of leases from file .* yet: connection refused$/));
    assert.is(readiness(daemon.status).ready, true);
  },
);

t("rules are re-synced every --iptables-resync seconds", async (ctx) => {
  const { daemon } = start(ctx, flagsOf(ctx, ["--iptables-resync=3"]));
  await until("ready", () => daemon.status.subnetEnvWritten);
  const n = ctx.rules.length;
  await ctx.clock.advance(3000);
  await until("a resync", () => ctx.rules.length > n);
});

t("SIGTERM: exit status 0; the lease, subnet.env and the store are left for the next start", async (ctx) => {
  const first = start(ctx);
  await until("ready", () => first.daemon.status.subnetEnvWritten);
  first.daemon.stop();
  assert.is(await first.done, 0);
  assert.ok(existsSync(join(ctx.storeDir, "10.244.1.0-24")));
  assert.ok(existsSync(ctx.subnetFile));
  // Another node takes a subnet meanwhile; the restart still gets its own back (by PublicIP).
  await new FileStore({ dir: ctx.storeDir }).create(
    { subnet: "10.244.2.0/24", attrs: other("192.0.2.9") },
    3600e3,
  );
  const second = start(ctx);
  await until("ready again", () => second.daemon.status.subnetEnvWritten);
  assert.is(second.daemon.status.lease.lease?.subnet, "10.244.1.0/24");
  assert.ok(
    ctx.logs.has(/^info Exiting cleanly: the lease, the routes and subnet.env are kept for the next start$/),
  );
});

t("a restart whose lease expired meanwhile takes subnet.env's subnet again", async (ctx) => {
  mkdirSync(join(ctx.dir, "run"), { recursive: true });
  writeFileSync(ctx.subnetFile, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.33.1/24\n");
  const { daemon } = start(ctx);
  await until("ready", () => daemon.status.subnetEnvWritten);
  assert.is(daemon.status.lease.lease?.subnet, "10.244.33.0/24");
});

t("an invalid net-conf ends the start with status 1 and a message naming the key", async (ctx) => {
  writeFileSync(ctx.netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}');
  const { done } = start(ctx);
  assert.is(await done, 1);
  assert.ok(
    ctx.logs.has(
      /^error Invalid network config in .*net-conf\.json: Backend\.Type: unsupported value "udp"; allowed values: "vxlan", "host-gw"$/,
    ),
  );
  assert.not.ok(existsSync(ctx.subnetFile));
});

t("the network config comes from the store when no file is named, the file wins when named", async (ctx) => {
  mkdirSync(ctx.storeDir, { recursive: true });
  writeFileSync(join(ctx.storeDir, "config"), '{"Network":"10.50.0.0/16","Backend":{"Type":"host-gw"}}');
  const noFile = parseArgs(
    [`--store-dir=${ctx.storeDir}`, `--subnet-file=${ctx.subnetFile}`, "--cni-socket="],
    {},
  );
  if (noFile.action !== "run") throw new Error();
  const a = start(ctx, noFile.flags);
  await until("ready", () => a.daemon.status.subnetEnvWritten);
  assert.match(readFileSync(ctx.subnetFile, "utf8"), /^FLANNEL_NETWORK=10\.50\.0\.0\/16\n/);
  a.daemon.stop();
  await a.done;
  rmSync(ctx.storeDir, { recursive: true });
  mkdirSync(ctx.storeDir);
  writeFileSync(join(ctx.storeDir, "config"), '{"Network":"10.50.0.0/16","Backend":{"Type":"host-gw"}}');
  const b = start(ctx);
  await until("ready", () => b.daemon.status.subnetEnvWritten);
  assert.match(readFileSync(ctx.subnetFile, "utf8"), /^FLANNEL_NETWORK=10\.244\.0\.0\/16\n/);
});

t("a missing net-conf is waited for (logged once per minute), not fatal", async (ctx) => {
  rmSync(ctx.netConf);
  const { daemon } = start(ctx);
  await until("the message", () =>
    ctx.logs.has(
      /^error Couldn't fetch network config: open .*net-conf\.json: no such file or directory \(retrying\)$/,
    ),
  );
  writeFileSync(ctx.netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
  await ctx.clock.advance(1000);
  await until("ready", () => daemon.status.subnetEnvWritten);
});

t("no interface, a backend that refuses, failing rules at start: status 1 with the reason", async (ctx) => {
  const noIface = start(
    ctx,
    flagsOf(ctx),
    deps(ctx, { findExternalInterface: async () => Promise.reject(new Error("no default route")) }),
  );
  assert.is(await noIface.done, 1);
  assert.ok(ctx.logs.has(/^error Failed to find any valid interface to use: no default route$/));
  ctx.backend.prepare = async () =>
    Promise.reject(new Error("public IP 192.0.2.1 is not on eth0 (NAT is not supported)"));
  const refused = start(ctx);
  assert.is(await refused.done, 1);
  assert.ok(ctx.logs.has(/^error Error registering network: public IP 192\.0\.2\.1 is not on eth0/));
  const badRules = start(
    ctx,
    flagsOf(ctx),
    deps(ctx, {
      createBackend: async () => new StubBackend([]),
      syncRules: async () => Promise.reject(new Error("iptables-restore: line 3 failed")),
    }),
  );
  assert.is(await badRules.done, 1);
  assert.ok(ctx.logs.has(/^error Failed to setup masq rules: iptables-restore: line 3 failed$/));
});

t("the backend hears what this node advertised before (its VTEP MAC survives a restart)", async (ctx) => {
  mkdirSync(ctx.storeDir, { recursive: true });
  writeFileSync(
    join(ctx.storeDir, "10.244.5.0-24"),
    encodeLeaseAttrs({
      PublicIP: "192.0.2.1",
      PublicIPv6: null,
      BackendType: "vxlan",
      BackendData: { VtepMAC: "aa:bb:cc:dd:ee:ff" },
    }),
  );
  const { daemon } = start(ctx);
  await until("ready", () => daemon.status.subnetEnvWritten);
  assert.equal(ctx.backend.prepared?.previous?.BackendData, { VtepMAC: "aa:bb:cc:dd:ee:ff" });
  assert.is(daemon.status.lease.lease?.subnet, "10.244.5.0/24");
});

t.run();
