import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FileLock } from "../../shared/ipam/flock.js";
import { uniqueName } from "../helpers/names.js";
import {
  type Call,
  callPlugin,
  hostLocalConf,
  hostLocalSuite,
  REFERENCE,
  testSubnet,
} from "./host-local-exe.js";

/**
 * weft's host-local against Debian's reference binary (containernetworking-plugins v1.1.1) on the same
 * data directory: each reads, frees and refuses the other's reservations, and both write the same bytes.
 * v1.1.1 speaks CNI up to 1.0.0, so interop configs use 1.0.0; GC and STATUS (1.1.0) are weft's alone.
 */

const { weft, netns, dataDir } = hostLocalSuite("hl", "weft-hl-it-");

const add = (containerId: string, ifname = "eth0", args?: string): Call => ({
  command: "ADD",
  containerId,
  ifname,
  netns: netns.path,
  ...(args ? { args } : {}),
});
const del = (containerId: string, ifname = "eth0"): Call => ({
  command: "DEL",
  containerId,
  ifname,
  netns: netns.path,
});
const check = (containerId: string, ifname = "eth0"): Call => ({
  command: "CHECK",
  containerId,
  ifname,
  netns: netns.path,
});

function ipsOf(out: { json: Record<string, unknown> | undefined }): string[] {
  return ((out.json?.ips ?? []) as Array<{ address: string }>).map((i) => i.address);
}

/** Every file of the network directory with its bytes, for byte-for-byte comparison. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) out[name] = readFileSync(join(dir, name)).toString("latin1");
  return out;
}

test("reservations made by the reference are seen, refused and released by weft", async () => {
  const dd = dataDir();
  const net = uniqueName("hl");
  const conf = hostLocalConf(dd, net, [[{ subnet: testSubnet(1) }]]);
  const prefix = testSubnet(1).replace(/\.0\/24$/, "");

  const ref = await callPlugin(REFERENCE, add("c1"), conf);
  assert.is(ref.status, 0, ref.stdout);
  assert.equal(ipsOf(ref), [`${prefix}.2/24`]);

  // The same container asking again does not get a second address.
  const again = await callPlugin(weft.exe, add("c1"), conf);
  assert.is(again.status, 1);
  assert.equal(again.json?.code, 999);
  assert.is(
    again.json?.msg,
    `failed to allocate for range 0: ${prefix}.2 has been allocated to c1, duplicate allocation is not allowed`,
  );
  assert.is((await callPlugin(weft.exe, check("c1"), conf)).status, 0);

  // weft continues the reference's round robin from its last_reserved_ip.0.
  const next = await callPlugin(weft.exe, add("c2"), conf);
  assert.is(next.status, 0, next.stdout);
  assert.equal(ipsOf(next), [`${prefix}.3/24`]);

  const freed = await callPlugin(weft.exe, del("c1"), conf);
  assert.is(freed.status, 0, freed.stdout);
  assert.is(freed.stdout, "");
  assert.equal(Object.keys(snapshot(join(dd, net))), [`${prefix}.3`, "last_reserved_ip.0", "lock"]);
  const refCheck = await callPlugin(REFERENCE, check("c1"), conf);
  assert.is(refCheck.status, 1);
  assert.is(refCheck.json?.msg, "host-local: Failed to find address added by container c1");
});

test("reservations made by weft are seen, refused and released by the reference", async () => {
  const dd = dataDir();
  const net = uniqueName("hl");
  const conf = hostLocalConf(dd, net, [[{ subnet: testSubnet(2) }], [{ subnet: "fd00:77::/64" }]]);
  const prefix = testSubnet(2).replace(/\.0\/24$/, "");

  const ours = await callPlugin(weft.exe, add("c3"), conf);
  assert.is(ours.status, 0, ours.stdout);
  assert.equal(ipsOf(ours), [`${prefix}.2/24`, "fd00:77::2/64"]);

  const refAgain = await callPlugin(REFERENCE, add("c3"), conf);
  assert.is(refAgain.status, 1);
  assert.is(
    refAgain.json?.msg,
    `failed to allocate for range 0: ${prefix}.2 has been allocated to c3, duplicate allocation is not allowed`,
  );
  assert.is((await callPlugin(REFERENCE, check("c3"), conf)).status, 0, "reference CHECK");

  const refNext = await callPlugin(REFERENCE, add("c4"), conf);
  assert.equal(ipsOf(refNext), [`${prefix}.3/24`, "fd00:77::3/64"]);

  const refDel = await callPlugin(REFERENCE, del("c3"), conf);
  assert.is(refDel.status, 0, refDel.stdout);
  assert.equal(Object.keys(snapshot(join(dd, net))), [
    `${prefix}.3`,
    "fd00:77::3",
    "last_reserved_ip.0",
    "last_reserved_ip.1",
    "lock",
  ]);
  const weftCheck = await callPlugin(weft.exe, check("c3"), conf);
  assert.is(weftCheck.status, 1);
  assert.equal(weftCheck.json?.code, 999);
  assert.is(weftCheck.json?.msg, "host-local: Failed to find address added by container c3");
  assert.is((await callPlugin(weft.exe, check("c4"), conf)).status, 0);
});

test("the same history writes the same files, byte for byte, and the same addresses", async () => {
  const ranges: Array<Array<Record<string, string>>> = [
    [
      { subnet: testSubnet(3), rangeStart: testSubnet(3).replace(/0\/24$/, "250") },
      { subnet: testSubnet(4) },
    ],
    [{ subnet: "fd00:78::/120" }],
  ];
  const history: Array<[Call, object?]> = [
    [add("a")],
    [add("b", "net1")],
    [add("c")],
    [add("d")],
    [add("e")],
    [del("b", "net1")],
    [add("f", "eth0", `IgnoreUnknown=1;K8S_POD_NAME=f;IP=${testSubnet(4).replace(/0\/24$/, "77")}`)],
    [add("g")],
  ];
  const run = async (exe: string) => {
    const dd = dataDir();
    const conf = hostLocalConf(dd, "same", ranges);
    const results: unknown[] = [];
    for (const [call] of history) {
      const out = await callPlugin(exe, call, conf);
      results.push({ status: out.status, ips: ipsOf(out), routes: out.json?.routes, msg: out.json?.msg });
    }
    return { files: snapshot(join(dd, "same")), results };
  };
  const reference = await run(REFERENCE);
  const ours = await run(weft.exe);
  assert.equal(ours.results, reference.results);
  assert.equal(ours.files, reference.files);
  assert.is(reference.files.a, undefined);
  assert.ok(Object.values(ours.files).includes("g\r\neth0"));
});

test("a container ID longer than any file name: the ID is only content, so both plugins serve it alike", async () => {
  // skel limits only its characters; host-local names files by address, never by ID (temp files too).
  const long = "c".repeat(300);
  const dd = dataDir();
  const conf = hostLocalConf(dd, "longid", [[{ subnet: testSubnet(8) }]]);
  for (const exe of [weft.exe, REFERENCE]) {
    const out = await callPlugin(exe, add(long), conf);
    assert.is(out.status, 0, out.stdout + out.stderr);
    assert.ok(Object.values(snapshot(join(dd, "longid"))).includes(`${long}\r\neth0`));
    assert.is((await callPlugin(exe, check(long), conf)).status, 0);
    assert.is((await callPlugin(exe, del(long), conf)).status, 0);
    assert.not.ok(Object.values(snapshot(join(dd, "longid"))).includes(`${long}\r\neth0`));
  }
});

test("a full range: the reference's error text as a CNI error, exit 1, nothing left behind", async () => {
  const dd = dataDir();
  const conf = hostLocalConf(dd, "full", [[{ subnet: "10.1.17.0/30" }]]);
  assert.is((await callPlugin(weft.exe, add("first"), conf)).status, 0);
  const before = snapshot(join(dd, "full"));

  const ours = await callPlugin(weft.exe, add("second"), conf);
  const ref = await callPlugin(REFERENCE, add("second"), conf);
  assert.is(ours.status, 1);
  assert.is(ref.status, 1);
  assert.equal(ours.json?.code, 999);
  assert.is(
    ours.json?.msg,
    "failed to allocate for range 0: no IP addresses available in range set: 10.1.17.1-10.1.17.2",
  );
  assert.is(ours.json?.msg, ref.json?.msg);
  assert.equal(snapshot(join(dd, "full")), before);
});

test("bad config is an error object on stdout with the reference's words, and creates nothing", async () => {
  const dd = dataDir();
  for (const [subnet, msg] of [
    ["10.0.0.0/31", "invalid range set 0: Network 10.0.0.0/31 too small to allocate from"],
    [
      "10.0.0.1/24",
      "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0",
    ],
  ] as const) {
    const conf = hostLocalConf(dd, "bad", [[{ subnet }]]);
    const ours = await callPlugin(weft.exe, add("x"), conf);
    const ref = await callPlugin(REFERENCE, add("x"), conf);
    assert.is(ours.status, 1);
    assert.is(ours.json?.msg, msg);
    assert.is(ref.json?.msg, msg);
  }
  assert.equal(readdirSync(dd), []);
});

test("weft's lock on <dir>/lock holds a reference host-local back until released", async () => {
  const dd = dataDir();
  const conf = hostLocalConf(dd, "locked", [[{ subnet: testSubnet(7) }]]);
  assert.is((await callPlugin(REFERENCE, add("first"), conf)).status, 0); // creates the directory and lock
  const lock = new FileLock(join(dd, "locked", "lock"));
  await lock.lock();
  let finished = false;
  const pending = callPlugin(REFERENCE, add("second"), conf).then((out) => {
    finished = true;
    return out;
  });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.not.ok(finished, "the reference allocated while weft held the lock");
  } finally {
    lock.unlock();
  }
  const out = await pending;
  assert.is(out.status, 0, out.stdout);
});

test("GC (1.1.0) releases what no valid attachment holds, including the reference's files", async () => {
  const dd = dataDir();
  const ranges = [[{ subnet: testSubnet(5) }]];
  const prefix = testSubnet(5).replace(/\.0\/24$/, "");
  const v10 = hostLocalConf(dd, "gcnet", ranges);
  for (const id of ["keep", "drop1"]) assert.is((await callPlugin(REFERENCE, add(id), v10)).status, 0);
  assert.is((await callPlugin(weft.exe, add("drop2"), v10)).status, 0);
  writeFileSync(join(dd, "gcnet", `${prefix}.200`), ""); // a crashed writer's empty file

  const gcConf = hostLocalConf(dd, "gcnet", ranges, "1.1.0", {
    "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }],
    "cni.dev/attachments": [{ containerID: "keep", ifname: "eth0" }],
  });
  const gc = await callPlugin(weft.exe, { command: "GC" }, gcConf);
  assert.is(gc.status, 0, gc.stdout + gc.stderr);
  assert.is(gc.stdout, "");
  assert.equal(Object.keys(snapshot(join(dd, "gcnet"))), [`${prefix}.2`, "last_reserved_ip.0", "lock"]);
  assert.is((await callPlugin(REFERENCE, check("keep"), v10)).status, 0);
});

test("STATUS (1.1.0) is code 50 while a range set is full, success otherwise", async () => {
  const dd = dataDir();
  const conf = hostLocalConf(dd, "st", [[{ subnet: testSubnet(6) }], [{ subnet: "10.1.18.0/30" }]], "1.1.0");
  const status = () => callPlugin(weft.exe, { command: "STATUS" }, conf);
  assert.is((await status()).status, 0);
  assert.is((await callPlugin(weft.exe, add("only"), conf)).status, 0);
  const full = await status();
  assert.is(full.status, 1);
  assert.equal(full.json?.code, 50);
  assert.is(full.json?.msg, "no IP addresses available in range set: 10.1.18.1-10.1.18.2");
  assert.is((await callPlugin(weft.exe, del("only"), conf)).status, 0);
  assert.is((await status()).status, 0);
});

test.run();
