import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { validAttachments } from "../../shared/cni/attachments.js";
import type { NetConf } from "../../shared/cni/types.js";
import { allocate } from "../../shared/ipam/allocator.js";
import { exhaustedRangeSet, rangeSetUsage } from "../../shared/ipam/capacity.js";
import { loadIpamConfig, type RangeJson } from "../../shared/ipam/config.js";
import { gcReservations } from "../../shared/ipam/gc.js";

const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(ranges: RangeJson[][], files: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "weft-gc-"));
  dirs.push(dataDir);
  const dir = join(dataDir, "net");
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const conf: NetConf = {
    cniVersion: "1.1.0",
    name: "net",
    type: "host-local",
    ipam: { type: "host-local", dataDir, ranges },
  };
  return { dir, cfg: loadIpamConfig(conf, "") };
}

const files = {
  "10.0.0.2": "c1\r\neth0",
  "10.0.0.3": "c1\r\neth1",
  "10.0.0.4": "c2\r\neth0",
  "10.0.0.5": "legacy1",
  "10.0.0.6": "legacy2",
  "10.0.0.7": "",
  "fd00::2": "c2\r\neth0",
  "not-an-ip": "c9\r\neth0",
  "last_reserved_ip.0": "10.0.0.4",
  lock: "",
  ".weft-tmp-123-abc-1": "c7\r\neth0",
};

test("GC keeps what valid attachments hold and releases the rest", async () => {
  const { dir, cfg } = setup([[{ subnet: "10.0.0.0/24" }]], files);
  const released = await gcReservations(cfg, [
    { containerID: "c1", ifname: "eth0" },
    { containerID: "c2", ifname: "eth0" },
    { containerID: "legacy1", ifname: "net1" },
  ]);
  // c1/eth1 is not valid (only c1/eth0 is); a legacy file survives through any attachment of its container;
  // the empty file holds nothing; the v6 file outside the configured ranges is still this network's.
  assert.equal(released.sort(), ["10.0.0.3", "10.0.0.6", "10.0.0.7"]);
  assert.equal(readdirSync(dir).sort(), [
    "10.0.0.2",
    "10.0.0.4",
    "10.0.0.5",
    "fd00::2",
    "last_reserved_ip.0",
    "lock",
    "not-an-ip",
  ]);
});

test("GC with an empty list releases every reservation, never lock or last_reserved_ip", async () => {
  const { dir, cfg } = setup([[{ subnet: "10.0.0.0/24" }]], files);
  await gcReservations(cfg, []);
  assert.equal(readdirSync(dir).sort(), ["last_reserved_ip.0", "lock", "not-an-ip"]);
});

test("GC without any attachment key releases nothing", async () => {
  const { dir, cfg } = setup([[{ subnet: "10.0.0.0/24" }]], files);
  assert.equal(await gcReservations(cfg, undefined), []);
  assert.is(readdirSync(dir).length, Object.keys(files).length);
});

test("valid attachments come from both the current and the legacy key", () => {
  const base: NetConf = { cniVersion: "1.1.0", name: "n", type: "host-local" };
  assert.is(validAttachments(base), undefined);
  assert.equal(validAttachments({ ...base, "cni.dev/valid-attachments": [] }), []);
  assert.equal(
    validAttachments({
      ...base,
      "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }],
      "cni.dev/attachments": [{ containerID: "b", ifname: "eth0" }],
    }),
    [
      { containerID: "a", ifname: "eth0" },
      { containerID: "b", ifname: "eth0" },
    ],
  );
});

test("usage counts reservations per set, gateway excluded; a full set is exhausted", async () => {
  const { dir, cfg } = setup([[{ subnet: "10.0.0.0/30" }], [{ subnet: "fd00::/64" }]]);
  assert.equal(
    rangeSetUsage(cfg).map((u) => [u.ranges, u.capacity, u.used]),
    [
      ["10.0.0.1-10.0.0.2", 1n, 0n],
      ["fd00::1-fd00::ffff:ffff:ffff:ffff", 2n ** 64n - 2n, 0n],
    ],
  );
  assert.is(exhaustedRangeSet(cfg), undefined);
  await allocate(cfg, "c1", "eth0");
  assert.is(exhaustedRangeSet(cfg)?.index, 0);
  // An empty file is free (ADD would reclaim it): not exhausted.
  writeFileSync(join(dir, "10.0.0.2"), "");
  assert.is(exhaustedRangeSet(cfg), undefined);
});

test("capacity: a gateway outside rangeStart-rangeEnd costs nothing, one inside costs one", () => {
  const { cfg } = setup([
    [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.100", rangeEnd: "10.0.0.102" }],
    [{ subnet: "10.0.1.0/24", rangeStart: "10.0.1.100", rangeEnd: "10.0.1.102", gateway: "10.0.1.101" }],
  ]);
  assert.equal(
    rangeSetUsage(cfg).map((u) => u.capacity),
    [3n, 2n],
  );
});

test("usage of a network never used reads nothing and creates nothing", () => {
  const { dir, cfg } = setup([[{ subnet: "10.0.0.0/30" }]]);
  rmSync(dir, { recursive: true });
  assert.is(rangeSetUsage(cfg)[0]!.used, 0n);
  assert.is(readdirSync(join(dir, "..")).length, 0);
});

test.run();
