import { test } from "uvu";
import * as assert from "uvu/assert";
import { type AddrRecord, addrAdd, addrReplace, conflictingAddrs, hasAddr } from "../../shared/net/addr.js";

const v4 = (local: string, prefixlen: number): AddrRecord => ({ family: "inet", local, prefixlen });
const v6 = (local: string, prefixlen: number): AddrRecord => ({ family: "inet6", local, prefixlen });

test("ensureAddr rules: v4 any other address conflicts, the same one does not", () => {
  const existing = [v4("10.244.1.1", 24), v6("fe80::1", 64)];
  assert.equal(conflictingAddrs(existing, "10.244.1.1/24"), []);
  assert.equal(conflictingAddrs(existing, "10.244.7.1/24"), [v4("10.244.1.1", 24)]);
  // Same address, other length: still "different".
  assert.equal(conflictingAddrs(existing, "10.244.1.1/16"), [v4("10.244.1.1", 24)]);
});

test("ensureAddr rules: v6 only overlapping prefixes conflict; link-local never does", () => {
  const existing = [v6("fd00:1::1", 64), v6("fe80::abcd", 64), v4("10.0.0.1", 24)];
  assert.equal(conflictingAddrs(existing, "fd00:2::1/64"), []);
  assert.equal(conflictingAddrs(existing, "fd00:1::fe/64"), [v6("fd00:1::1", 64)]);
  assert.equal(conflictingAddrs(existing, "fd00::1/16"), [v6("fd00:1::1", 64)]);
  assert.equal(conflictingAddrs(existing, "fd00:1:0:0::1/64"), []);
});

test("hasAddr compares canonical addresses and lengths", () => {
  assert.ok(hasAddr([v6("fd00:1::1", 64)], "fd00:1:0::1/64"));
  assert.not.ok(hasAddr([v6("fd00:1::1", 64)], "fd00:1::1/65"));
});

test("an IPv4 address below /31 gets its broadcast address, as netlink's AddrAdd gives the reference's", () => {
  assert.is(addrAdd("10.244.1.2/24", "eth0", "x").line, "addr add 10.244.1.2/24 brd + dev eth0");
  assert.is(addrReplace("10.244.1.1/24", "cni0", "x").line, "addr replace 10.244.1.1/24 brd + dev cni0");
  assert.is(addrAdd("10.9.0.6/30", "eth0", "x").line, "addr add 10.9.0.6/30 brd + dev eth0");
  // None for /31 and /32 (RFC 3021; flannel.1's <subnet>.0/32) nor for IPv6.
  assert.is(addrReplace("10.244.1.0/32", "flannel.1", "x").line, "addr replace 10.244.1.0/32 dev flannel.1");
  assert.is(addrAdd("10.0.0.0/31", "eth0", "x").line, "addr add 10.0.0.0/31 dev eth0");
  assert.is(addrAdd("fd00::2/64", "eth0", "x").line, "addr add fd00::2/64 dev eth0");
});

test.run();
