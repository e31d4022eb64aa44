import { test } from "uvu";
import * as assert from "uvu/assert";
import { contains, firstHost, networkOf, overlaps, parseIpNet } from "../../shared/net/ipnet.js";

test("parse and canonicalise", () => {
  assert.equal(parseIpNet("10.244.1.7/24"), { family: 4, ip: "10.244.1.7", prefix: 24 });
  assert.equal(parseIpNet("fd00:0:0::7/64"), { family: 6, ip: "fd00::7", prefix: 64 });
  assert.equal(parseIpNet("10.0.0.1"), { family: 4, ip: "10.0.0.1", prefix: 32 });
  assert.throws(() => parseIpNet("10.0.0.300/24"));
});

test("network and calcGatewayIP (network + 1)", () => {
  assert.is(networkOf("10.244.1.7/24"), "10.244.1.0/24");
  assert.is(networkOf("fd00:10:244:1::7/64"), "fd00:10:244:1::/64");
  assert.is(firstHost("10.244.1.7/24"), "10.244.1.1");
  assert.is(firstHost("10.244.1.7/30"), "10.244.1.5");
  assert.is(firstHost("fd00:10:244:1::7/64"), "fd00:10:244:1::1");
});

test("containment and overlap", () => {
  assert.ok(contains("10.244.0.0/16", "10.244.9.9"));
  assert.not.ok(contains("10.244.0.0/16", "10.245.0.1"));
  assert.not.ok(contains("10.244.0.0/16", "fd00::1"));
  assert.ok(overlaps("fd00::/56", "fd00:0:0:1::1/64"));
  assert.not.ok(overlaps("fd00:1::/64", "fd00:2::/64"));
});

test.run();
