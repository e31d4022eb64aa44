import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { formatIp, nextIp, parseCidr, parseIp, parseIpOrCidr } from "../../shared/ipam/address.js";
import { parseResolvConf } from "../../shared/ipam/dns.js";
import { roundRobin } from "../../shared/ipam/iterator.js";
import { canonicalizeRangeSet } from "../../shared/ipam/range-set.js";

const dir = mkdtempSync(join(tmpdir(), "weft-addr-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("addresses print as Go's net.IP.String()", () => {
  const cases: Array<[string, string]> = [
    ["10.0.0.1", "10.0.0.1"],
    ["2001:DB8::0:0:1", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:0:0:1:0:0:1:1", "1::1:0:0:1:1"],
    ["::ffff:10.0.0.1", "10.0.0.1"],
    ["::ffff:a00:1", "10.0.0.1"],
    ["::10.0.0.1", "::a00:1"],
    ["fd00:10:244:1::2", "fd00:10:244:1::2"],
  ];
  for (const [input, printed] of cases) assert.is(formatIp(parseIp(input)!), printed, input);
});

test("what Go's ParseIP refuses is refused", () => {
  for (const bad of ["", "10.0.0", "010.0.0.1", "10.0.0.256", "fe80::1%eth0", "10.0.0.1/24", " 10.0.0.1"]) {
    assert.is(parseIp(bad), undefined, bad);
  }
  assert.is(formatIp(parseIpOrCidr("10.0.0.9/8")!), "10.0.0.9");
  assert.equal(parseCidr("10.0.0.5/24")?.prefix, 24);
  assert.is(parseCidr("10.0.0.5/33"), undefined);
  assert.is(parseCidr("10.0.0.5"), undefined);
});

test("nextIp carries across octets and groups", () => {
  assert.is(formatIp(nextIp(parseIp("10.0.0.255")!)), "10.0.1.0");
  assert.is(formatIp(nextIp(parseIp("fd00::ffff")!)), "fd00::1:0");
});

const ip = (s: string) => parseIp(s)!;
const walk = (subnets: Array<Record<string, string>>, last?: string) => {
  const set = canonicalizeRangeSet(
    subnets.map((r) => ({
      subnet: parseCidr(r.subnet!),
      rangeStart: r.start ? ip(r.start) : undefined,
      rangeEnd: r.end ? ip(r.end) : undefined,
    })),
  );
  return [...roundRobin(set, last ? ip(last) : undefined)].map((c) => formatIp(c.ip));
};

test("the iterator from the beginning, middle and end (reference allocator_test)", () => {
  const sub = [{ subnet: "192.168.1.0/29" }];
  assert.equal(walk(sub), ["192.168.1.2", "192.168.1.3", "192.168.1.4", "192.168.1.5", "192.168.1.6"]);
  assert.equal(walk(sub, "192.168.1.6"), [
    "192.168.1.2",
    "192.168.1.3",
    "192.168.1.4",
    "192.168.1.5",
    "192.168.1.6",
  ]);
  assert.equal(walk(sub, "192.168.1.3"), [
    "192.168.1.4",
    "192.168.1.5",
    "192.168.1.6",
    "192.168.1.2",
    "192.168.1.3",
  ]);
});

test("the iterator moves from the end of one range to the start of the next", () => {
  const subs = [
    { subnet: "192.168.1.0/30", start: "192.168.1.0", end: "192.168.1.3" },
    { subnet: "192.168.2.0/30", start: "192.168.2.0", end: "192.168.2.3" },
  ];
  // rangeStart may be the network address when configured so; the gateway (.1) is still skipped.
  assert.equal(walk(subs, "192.168.1.3"), [
    "192.168.2.0",
    "192.168.2.2",
    "192.168.2.3",
    "192.168.1.0",
    "192.168.1.2",
    "192.168.1.3",
  ]);
});

test("resolv.conf: nameservers append, domain, all search and options tokens; comments skipped", () => {
  const path = join(dir, "resolv.conf");
  writeFileSync(
    path,
    "# comment\n; other\nnameserver 10.0.0.10\r\nnameserver  fd00::10\ndomain example.com\nsearch a.example b.example\nsearch c.example\noptions ndots:5 edns0\nnameserver\n\n",
  );
  assert.equal(parseResolvConf(path), {
    nameservers: ["10.0.0.10", "fd00::10"],
    domain: "example.com",
    search: ["a.example", "b.example", "c.example"],
    options: ["ndots:5", "edns0"],
  });
  let msg = "";
  try {
    parseResolvConf(join(dir, "missing"));
  } catch (err) {
    msg = (err as Error).message;
  }
  assert.is(msg, `open ${join(dir, "missing")}: no such file or directory`);
});

test.run();
