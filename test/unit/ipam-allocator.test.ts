import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CniError } from "../../shared/cni/errors.js";
import type { NetConf } from "../../shared/cni/types.js";
import { allocate, hasReservation, release, toIpConfig } from "../../shared/ipam/allocator.js";
import { type IpamConfig, loadIpamConfig, type RangeJson } from "../../shared/ipam/config.js";

/**
 * Allocation histories run against real files in a temp dir, checked against what the reference
 * allocator hands out for the same history (cases from its allocator_test.go plus weft's own).
 */

const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "weft-ipam-"));
  dirs.push(d);
  return d;
}

type Step =
  | { add: string; ifname?: string; args?: string; ips?: string[]; expect: string[] | { error: string } }
  | { del: string; ifname?: string };

interface History {
  name: string;
  ranges: RangeJson[][];
  /** Files present before the first step: name -> content. */
  files?: Record<string, string>;
  steps: Step[];
  /** The directory listing after the last step, when it matters. */
  left?: string[];
}

function config(dataDir: string, ranges: RangeJson[][], extra: Partial<NetConf> = {}, env = ""): IpamConfig {
  const conf: NetConf = {
    cniVersion: "1.0.0",
    name: "net",
    type: "host-local",
    ipam: { type: "host-local", dataDir, ranges },
    ...extra,
  };
  return loadIpamConfig(conf, env);
}

async function runHistory(h: History): Promise<string> {
  const dataDir = tempDataDir();
  const dir = join(dataDir, "net");
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(h.files ?? {})) writeFileSync(join(dir, name), content);
  for (const [i, step] of h.steps.entries()) {
    if ("del" in step) {
      await release(config(dataDir, h.ranges), step.del, step.ifname ?? "eth0");
      continue;
    }
    const extra: Partial<NetConf> = step.ips ? { args: { cni: { ips: step.ips } } } : {};
    let got: string[] | { error: string };
    try {
      const cfg = config(dataDir, h.ranges, extra, step.args ?? "");
      got = (await allocate(cfg, step.add, step.ifname ?? "eth0")).map((a) => toIpConfig(a).address);
    } catch (err) {
      if (!(err instanceof CniError)) throw err;
      got = { error: err.msg };
    }
    assert.equal(got, step.expect, `${h.name}: step ${i} (ADD ${step.add})`);
  }
  if (h.left) assert.equal(readdirSync(dir).sort(), h.left, `${h.name}: files left`);
  return dir;
}

const v4_29 = [[{ subnet: "10.0.0.0/29" }]];
const last = (ip: string) => ({ "last_reserved_ip.0": ip });

const histories: History[] = [
  { name: "fresh /29", ranges: v4_29, steps: [{ add: "a", expect: ["10.0.0.2/29"] }] },
  {
    name: "fresh v6 /64",
    ranges: [[{ subnet: "2001:db8:1::0/64" }]],
    steps: [{ add: "a", expect: ["2001:db8:1::2/64"] }],
  },
  {
    name: "fresh /30",
    ranges: [[{ subnet: "10.0.0.0/30" }]],
    steps: [{ add: "a", expect: ["10.0.0.2/30"] }],
  },
  {
    name: "first taken",
    ranges: v4_29,
    files: { "10.0.0.2": "id" },
    steps: [{ add: "a", expect: ["10.0.0.3/29"] }],
  },
  {
    name: "after last reserved",
    ranges: v4_29,
    files: last("10.0.0.5"),
    steps: [{ add: "a", expect: ["10.0.0.6/29"] }],
  },
  {
    name: "after last reserved, skipping taken",
    ranges: v4_29,
    files: { ...last("10.0.0.3"), "10.0.0.4": "id", "10.0.0.5": "id" },
    steps: [{ add: "a", expect: ["10.0.0.6/29"] }],
  },
  {
    name: "wrap to the beginning, skipping the gateway",
    ranges: v4_29,
    files: { ...last("10.0.0.5"), "10.0.0.6": "id" },
    steps: [{ add: "a", expect: ["10.0.0.2/29"] }],
  },
  {
    name: "last reserved out of the range restarts at rangeStart",
    ranges: v4_29,
    files: { ...last("10.0.0.128"), "10.0.0.2": "id" },
    steps: [{ add: "a", expect: ["10.0.0.3/29"] }],
  },
  {
    name: "unparsable last reserved restarts at rangeStart (Go's ParseIP does not trim)",
    ranges: v4_29,
    files: { ...last("10.0.0.4\n") },
    steps: [{ add: "a", expect: ["10.0.0.2/29"] }],
  },
  {
    name: "full but the last reserved address: it is offered last",
    ranges: v4_29,
    files: { ...last("10.0.0.3"), "10.0.0.2": "id", "10.0.0.4": "id", "10.0.0.5": "id", "10.0.0.6": "id" },
    steps: [{ add: "a", expect: ["10.0.0.3/29"] }],
  },
  {
    name: "multi-range set: start in the first",
    ranges: [[{ subnet: "10.0.0.0/30" }, { subnet: "10.0.1.0/30" }]],
    steps: [{ add: "a", expect: ["10.0.0.2/30"] }],
  },
  {
    name: "multi-range set: advance to the next range",
    ranges: [[{ subnet: "10.0.0.0/30" }, { subnet: "10.0.1.0/30" }]],
    files: last("10.0.0.2"),
    steps: [{ add: "a", expect: ["10.0.1.2/30"] }],
  },
  {
    name: "multi-range set: roll over to the first range",
    ranges: [[{ subnet: "10.0.0.0/30" }, { subnet: "10.0.1.0/30" }, { subnet: "10.0.2.0/30" }]],
    files: last("10.0.2.2"),
    steps: [{ add: "a", expect: ["10.0.0.2/30"] }],
  },
  {
    name: "never the broadcast; the exhaustion message",
    ranges: v4_29,
    steps: [
      { add: "a", expect: ["10.0.0.2/29"] },
      { add: "b", expect: ["10.0.0.3/29"] },
      { add: "c", expect: ["10.0.0.4/29"] },
      { add: "d", expect: ["10.0.0.5/29"] },
      { add: "e", expect: ["10.0.0.6/29"] },
      {
        add: "f",
        expect: {
          error: "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.1-10.0.0.6",
        },
      },
    ],
  },
  {
    name: "/30 exhaustion reads like the lab",
    ranges: [[{ subnet: "10.1.17.0/30" }]],
    steps: [
      { add: "a", expect: ["10.1.17.2/30"] },
      {
        add: "b",
        expect: {
          error:
            "failed to allocate for range 0: no IP addresses available in range set: 10.1.17.1-10.1.17.2",
        },
      },
    ],
  },
  {
    name: "round robin after release: the same container gets the next address",
    ranges: v4_29,
    steps: [{ add: "a", expect: ["10.0.0.2/29"] }, { del: "a" }, { add: "a", expect: ["10.0.0.3/29"] }],
  },
  {
    name: "wrap-around history reuses released addresses in order",
    ranges: [[{ subnet: "10.0.0.0/29" }]],
    steps: [
      { add: "a", expect: ["10.0.0.2/29"] },
      { add: "b", expect: ["10.0.0.3/29"] },
      { add: "c", expect: ["10.0.0.4/29"] },
      { del: "a" },
      { add: "d", expect: ["10.0.0.5/29"] },
      { add: "e", expect: ["10.0.0.6/29"] },
      { add: "f", expect: ["10.0.0.2/29"] },
      { del: "c" },
      { add: "g", expect: ["10.0.0.4/29"] },
    ],
  },
  {
    name: "custom gateway in the middle: .1 is handed out, the gateway skipped",
    ranges: [[{ subnet: "10.0.0.0/29", gateway: "10.0.0.3" }]],
    steps: [
      { add: "a", expect: ["10.0.0.1/29"] },
      { add: "b", expect: ["10.0.0.2/29"] },
      { add: "c", expect: ["10.0.0.4/29"] },
      { add: "d", expect: ["10.0.0.5/29"] },
      { add: "e", expect: ["10.0.0.6/29"] },
      {
        add: "f",
        expect: {
          error: "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.1-10.0.0.6",
        },
      },
    ],
  },
  {
    name: "rangeStart/rangeEnd bound the allocation",
    ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.100", rangeEnd: "10.0.0.102" }]],
    steps: [
      { add: "a", expect: ["10.0.0.100/24"] },
      { add: "b", expect: ["10.0.0.101/24"] },
      { add: "c", expect: ["10.0.0.102/24"] },
      {
        add: "d",
        expect: {
          error:
            "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.100-10.0.0.102",
        },
      },
    ],
  },
  {
    name: "multi-range set: exhaustion names every range, release then wrap",
    ranges: [[{ subnet: "10.0.0.0/30" }, { subnet: "10.0.1.0/30" }]],
    steps: [
      { add: "a", expect: ["10.0.0.2/30"] },
      { add: "b", expect: ["10.0.1.2/30"] },
      {
        add: "c",
        expect: {
          error:
            "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2",
        },
      },
      { del: "a" },
      { add: "d", expect: ["10.0.0.2/30"] },
    ],
  },
  {
    name: "IPv6 range with start and end",
    ranges: [[{ subnet: "fd00:10::/64", rangeStart: "fd00:10::a", rangeEnd: "fd00:10::c" }]],
    steps: [
      { add: "a", expect: ["fd00:10::a/64"] },
      { add: "b", expect: ["fd00:10::b/64"] },
      { add: "c", expect: ["fd00:10::c/64"] },
      {
        add: "d",
        expect: {
          error:
            "failed to allocate for range 0: no IP addresses available in range set: fd00:10::a-fd00:10::c",
        },
      },
    ],
  },
  {
    name: "IPv6 /126: gateway ::1 skipped, no broadcast in v6",
    ranges: [[{ subnet: "fd00:1::/126" }]],
    steps: [
      { add: "a", expect: ["fd00:1::2/126"] },
      { add: "b", expect: ["fd00:1::3/126"] },
      {
        add: "c",
        expect: {
          error:
            "failed to allocate for range 0: no IP addresses available in range set: fd00:1::1-fd00:1::3",
        },
      },
    ],
  },
  {
    // A writer killed between its temp file and the link (weftd SIGKILLed mid-ADD, cni-socket.test) left
    // the file for good: only GC removed it. Whoever holds the lock next knows it is stale.
    name: "temp files a dead writer left go with the next ADD and DEL (both hold the lock)",
    ranges: [[{ subnet: "10.0.0.0/29" }]],
    files: { ".weft-tmp-4242-mx3f3vae-5": "dead\r\neth0", ".weft-tmp-4242-mx3f3vaf-6": "" },
    steps: [{ add: "a", expect: ["10.0.0.2/29"] }],
    left: ["10.0.0.2", "last_reserved_ip.0", "lock"],
  },
  {
    name: "the same for DEL",
    ranges: [[{ subnet: "10.0.0.0/29" }]],
    files: { "10.0.0.2": "a\r\neth0", ".weft-tmp-4242-mx3f3vae-5": "dead\r\neth0" },
    steps: [{ del: "a" }],
    left: ["lock"],
  },
  {
    name: "dual-stack: one address per set",
    ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]],
    steps: [
      { add: "a", expect: ["10.0.0.2/24", "fd00::2/64"] },
      { add: "b", expect: ["10.0.0.3/24", "fd00::3/64"] },
    ],
  },
  {
    name: "dual-stack: a full second set rolls back the first",
    ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/126" }]],
    files: { "fd00::2": "x\r\neth0", "fd00::3": "y\r\neth0" },
    steps: [
      {
        add: "a",
        expect: {
          error: "failed to allocate for range 1: no IP addresses available in range set: fd00::1-fd00::3",
        },
      },
      {
        add: "b",
        ips: ["fd00::1"],
        expect: { error: "failed to allocate for range 1: requested ip fd00::1 is subnet's gateway" },
      },
    ],
    // 10.0.0.2 and .3 were released again; last_reserved_ip.0 stays, as in the reference.
    left: ["fd00::2", "fd00::3", "last_reserved_ip.0", "lock"],
  },
  {
    name: "requested addresses",
    ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]],
    steps: [
      { add: "a", ips: ["10.0.0.50"], expect: ["10.0.0.50/24", "fd00::2/64"] },
      // last_reserved_ip.0 now says .50
      { add: "b", expect: ["10.0.0.51/24", "fd00::3/64"] },
      {
        add: "c",
        ips: ["10.0.0.50"],
        expect: {
          error:
            "failed to allocate for range 0: requested IP address 10.0.0.50 is not available in range set 10.0.0.1-10.0.0.254",
        },
      },
      {
        add: "d",
        ips: ["10.0.0.1"],
        expect: { error: "failed to allocate for range 0: requested ip 10.0.0.1 is subnet's gateway" },
      },
      {
        add: "e",
        args: "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.0.0.77/8",
        ips: ["fd00::77"],
        expect: ["10.0.0.77/24", "fd00::77/64"],
      },
      {
        add: "f",
        ips: ["10.0.0.90", "10.0.0.91"],
        expect: { error: "failed to allocate all requested IPs: 10.0.0.91" },
      },
      {
        add: "g",
        ips: ["192.168.9.9"],
        expect: { error: "failed to allocate all requested IPs: 192.168.9.9" },
      },
      // f and g left nothing behind: .90 is free again. Their rolled-back v6 reservations (::78, ::79)
      // still moved last_reserved_ip.1 on, as in the reference.
      { add: "h", ips: ["10.0.0.90", "10.0.0.90"], expect: ["10.0.0.90/24", "fd00::7a/64"] },
    ],
  },
  {
    name: "duplicate allocation for the same container and interface fails; another interface is fine",
    ranges: v4_29,
    steps: [
      { add: "c1", expect: ["10.0.0.2/29"] },
      {
        add: "c1",
        expect: {
          error:
            "failed to allocate for range 0: 10.0.0.2 has been allocated to c1, duplicate allocation is not allowed",
        },
      },
      { add: "c1", ifname: "eth1", expect: ["10.0.0.3/29"] },
      { add: "c2", expect: ["10.0.0.4/29"] },
    ],
  },
  {
    name: "a legacy ID-only file counts as a duplicate",
    ranges: v4_29,
    files: { "10.0.0.5": "c1" },
    steps: [
      {
        add: "c1",
        expect: {
          error:
            "failed to allocate for range 0: 10.0.0.5 has been allocated to c1, duplicate allocation is not allowed",
        },
      },
    ],
  },
  {
    name: "empty and garbage reservation files are reclaimed (weft only: the reference would skip them)",
    ranges: v4_29,
    files: { "10.0.0.2": "", "10.0.0.3": "\u0000\u0000\u0000\u0000", "10.0.0.4": " \r\n " },
    steps: [
      { add: "a", expect: ["10.0.0.2/29"] },
      { add: "b", expect: ["10.0.0.3/29"] },
      { add: "c", expect: ["10.0.0.4/29"] },
      { add: "d", expect: ["10.0.0.5/29"] },
    ],
  },
];

for (const h of histories) {
  test(`history: ${h.name}`, async () => {
    await runHistory(h);
  });
}

test("the reservation file, last_reserved_ip and lock are the reference's bytes and modes", async () => {
  const dataDir = tempDataDir();
  const cfg = config(dataDir, [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00:10:244:1::/64" }]]);
  await allocate(cfg, "c1", "eth0");
  const dir = join(dataDir, "net");
  assert.equal(readdirSync(dir).sort(), [
    "10.0.0.2",
    "fd00:10:244:1::2",
    "last_reserved_ip.0",
    "last_reserved_ip.1",
    "lock",
  ]);
  assert.equal([...readFileSync(join(dir, "10.0.0.2"))], [...Buffer.from("c1\r\neth0")]);
  assert.is(readFileSync(join(dir, "fd00:10:244:1::2"), "latin1"), "c1\r\neth0");
  assert.is(readFileSync(join(dir, "last_reserved_ip.0"), "latin1"), "10.0.0.2");
  assert.is(readFileSync(join(dir, "last_reserved_ip.1"), "latin1"), "fd00:10:244:1::2");
  assert.is(readFileSync(join(dir, "lock"), "latin1"), "");
  const mode = (f: string) => (statMode(join(dir, f)) & 0o777).toString(8);
  assert.is(mode("10.0.0.2"), "600");
  assert.is(mode("last_reserved_ip.0"), "600");
  assert.is(mode("lock"), (0o750 & ~process.umask()).toString(8));
  assert.is(mode("."), (0o755 & ~process.umask()).toString(8));
});

function statMode(p: string): number {
  return statSync(p).mode;
}

test("DEL removes by container and interface, falls back to legacy ID-only files, succeeds when nothing is held", async () => {
  const dataDir = tempDataDir();
  const cfg = config(dataDir, v4_29);
  const dir = join(dataDir, "net");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "10.0.0.5"), "c1\r\neth0");
  writeFileSync(join(dir, "10.0.0.6"), "c1\r\neth1");
  writeFileSync(join(dir, "10.0.0.4"), "legacy");
  writeFileSync(join(dir, "10.0.0.3"), "  c1\r\neth0\n"); // whitespace around content is tolerated
  assert.equal((await release(cfg, "c1", "eth0")).sort(), ["10.0.0.3", "10.0.0.5"]);
  assert.equal(await release(cfg, "c1", "eth0"), []);
  assert.equal(await release(cfg, "legacy", "eth0"), ["10.0.0.4"]);
  assert.equal(await release(cfg, "unknown", "eth0"), []);
  assert.equal(readdirSync(dir).sort(), ["10.0.0.6", "lock"]);
});

test("DEL with two range sets also removes the container's legacy files (the reference runs Release per set)", async () => {
  const dataDir = tempDataDir();
  const dir = join(dataDir, "net");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "10.0.0.5"), "c1\r\neth0");
  writeFileSync(join(dir, "10.0.0.6"), "c1");
  const one = config(dataDir, v4_29);
  assert.equal(await release(one, "c1", "eth0"), ["10.0.0.5"]);
  writeFileSync(join(dir, "10.0.0.5"), "c1\r\neth0");
  const two = config(dataDir, [[{ subnet: "10.0.0.0/29" }], [{ subnet: "fd00::/64" }]]);
  assert.equal(await release(two, "c1", "eth0"), ["10.0.0.5", "10.0.0.6"]);
});

test("DEL frees addresses outside the configured ranges (a changed subnet)", async () => {
  const dataDir = tempDataDir();
  const dir = join(dataDir, "net");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "10.99.0.5"), "c1\r\neth0");
  assert.equal(await release(config(dataDir, v4_29), "c1", "eth0"), ["10.99.0.5"]);
});

test("CHECK finds the reservation, or a legacy one, and nothing for strangers", async () => {
  const dataDir = tempDataDir();
  const cfg = config(dataDir, v4_29);
  await allocate(cfg, "c1", "eth0");
  assert.ok(await hasReservation(cfg, "c1", "eth0"));
  assert.not.ok(await hasReservation(cfg, "c1", "eth1"));
  assert.not.ok(await hasReservation(cfg, "c2", "eth0"));
  writeFileSync(join(dataDir, "net", "10.0.0.6"), "old");
  assert.ok(await hasReservation(cfg, "old", "eth9"));
});

test("a network name or container ID that would leave dataDir is refused", async () => {
  const dataDir = tempDataDir();
  for (const name of ["..", "../x", "a/b", ".hidden"]) {
    const cfg = { ...config(dataDir, v4_29), name };
    let err: unknown;
    try {
      await allocate(cfg, "c1", "eth0");
    } catch (e) {
      err = e;
    }
    assert.instance(err, CniError, `network name ${name}`);
  }
  for (const id of ["../x", "a/b", "a\r\nb", ""]) {
    let err: unknown;
    try {
      await allocate(config(dataDir, v4_29), id, "eth0");
    } catch (e) {
      err = e;
    }
    assert.instance(err, CniError, `container ID ${JSON.stringify(id)}`);
  }
  assert.equal(readdirSync(dataDir), []);
});

test("a dataDir that cannot hold the network directory fails with Go's wording", async () => {
  const dataDir = tempDataDir();
  writeFileSync(join(dataDir, "file"), "");
  let msg = "";
  try {
    await allocate(config(join(dataDir, "file"), v4_29), "c1", "eth0");
  } catch (err) {
    msg = (err as Error).message;
  }
  assert.is(msg, `mkdir ${join(dataDir, "file", "net")}: not a directory`);
});

test("no temp file is left behind by ADD, DEL or a failed ADD", async () => {
  const dataDir = tempDataDir();
  const cfg = config(dataDir, [[{ subnet: "10.0.0.0/30" }]]);
  await allocate(cfg, "a", "eth0");
  await allocate(cfg, "b", "eth0").catch(() => undefined);
  await release(cfg, "a", "eth0");
  assert.equal(readdirSync(join(dataDir, "net")).sort(), ["last_reserved_ip.0", "lock"]);
});

test.run();
