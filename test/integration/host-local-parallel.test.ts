import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  callPlugin,
  hostLocalConf,
  hostLocalSuite,
  type Outcome,
  REFERENCE,
  testSubnet,
} from "./host-local-exe.js";

/**
 * Many host-local processes racing on one data directory, weft alone and weft against the reference:
 * every address goes to exactly one container, and each reservation file names its owner.
 */

const { weft, netns, dataDir } = hostLocalSuite("hp", "weft-hl-par-");

const add = (exe: string, id: string, conf: object) =>
  callPlugin(exe, { command: "ADD", containerId: id, ifname: "eth0", netns: netns.path }, conf);

function addressOf(out: Outcome): string {
  const ips = out.json?.ips as Array<{ address: string }> | undefined;
  assert.ok(out.status === 0 && ips?.length === 1, `ADD failed: ${out.stdout} ${out.stderr}`);
  return ips![0]!.address.split("/")[0]!;
}

/** Reservation files (name -> content) of a network directory. */
function reservations(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    if (name === "lock" || name.startsWith("last_reserved_ip.")) continue;
    out.set(name, readFileSync(join(dir, name), "latin1"));
  }
  return out;
}

test("32 weft ADDs in parallel get 32 distinct addresses", async () => {
  const dd = dataDir();
  const conf = hostLocalConf(dd, "par32", [[{ subnet: testSubnet(10) }]]);
  const ids = Array.from({ length: 32 }, (_, i) => `w${i}`);
  const outs = await Promise.all(ids.map((id) => add(weft.exe, id, conf)));
  const addrs = outs.map(addressOf);
  assert.is(new Set(addrs).size, 32);
  const files = reservations(join(dd, "par32"));
  assert.is(files.size, 32);
  for (const [i, id] of ids.entries()) assert.is(files.get(addrs[i]!), `${id}\r\neth0`);

  const dels = await Promise.all(
    ids.map((id) => callPlugin(weft.exe, { command: "DEL", containerId: id, ifname: "eth0" }, conf)),
  );
  for (const d of dels) assert.is(d.status, 0, d.stdout);
  assert.is(reservations(join(dd, "par32")).size, 0);
});

test("16 weft and 16 reference ADDs in parallel on one directory: no duplicates", async () => {
  const dd = dataDir();
  const conf = hostLocalConf(dd, "mixed", [[{ subnet: testSubnet(11) }]]);
  const calls = Array.from({ length: 32 }, (_, i) =>
    i % 2 === 0 ? { exe: weft.exe, id: `w${i}` } : { exe: REFERENCE, id: `r${i}` },
  );
  const outs = await Promise.all(calls.map((c) => add(c.exe, c.id, conf)));
  const addrs = outs.map(addressOf);
  assert.is(new Set(addrs).size, 32);
  const files = reservations(join(dd, "mixed"));
  assert.is(files.size, 32);
  for (const [i, c] of calls.entries()) assert.is(files.get(addrs[i]!), `${c.id}\r\neth0`);
});

test("racing for the last addresses of a /28: exactly the free ones are handed out, the rest fail cleanly", async () => {
  const dd = dataDir();
  const subnet = testSubnet(12).replace(/0\/24$/, "16/28"); // .17-.30 usable, .17 is the gateway: 13 addresses
  const conf = hostLocalConf(dd, "tight", [[{ subnet }]]);
  const calls = Array.from({ length: 18 }, (_, i) =>
    i % 2 === 0 ? { exe: weft.exe, id: `w${i}` } : { exe: REFERENCE, id: `r${i}` },
  );
  const outs = await Promise.all(calls.map((c) => add(c.exe, c.id, conf)));
  const won = outs.filter((o) => o.status === 0);
  const lost = outs.filter((o) => o.status !== 0);
  assert.is(won.length, 13);
  assert.is(new Set(won.map(addressOf)).size, 13);
  const base = subnet.replace(/\.16\/28$/, "");
  for (const o of lost) {
    assert.is(o.status, 1);
    assert.is(
      o.json?.msg,
      `failed to allocate for range 0: no IP addresses available in range set: ${base}.17-${base}.30`,
    );
  }
  const files = reservations(join(dd, "tight"));
  assert.is(files.size, 13);
  for (const name of files.keys()) assert.ok(!name.startsWith("."), `temp file left: ${name}`);
});

test.run();
