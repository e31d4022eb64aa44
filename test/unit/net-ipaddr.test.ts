import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  type Cidr,
  cidrEqual,
  contains,
  familyOfText,
  firstHost,
  formatCidr,
  formatIp,
  lastOf,
  networkOf,
  nextIp,
  nextSubnet,
  nthSubnet,
  overlaps,
  parseCidr,
  parseIp,
  subnetCount,
  tryParseCidr,
  tryParseIp,
  tryParseIpOrCidr,
} from "../../shared/net/ipaddr.js";

// The expectations in the tables below are what Go 1.19.8 (/usr/lib/go, the toolchain Debian's reference
// plugins are built with) prints for net.ParseIP(s).String() and net.ParseCIDR.

/** [text, net.ParseIP(text).String() or undefined for nil] */
const PARSE_IP: Array<[string, string | undefined]> = [
  ["10.0.0.1", "10.0.0.1"],
  ["0.0.0.0", "0.0.0.0"],
  ["255.255.255.255", "255.255.255.255"],
  ["2001:DB8::0:0:1", "2001:db8::1"],
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
  ["1:0:0:1:0:0:1:1", "1::1:0:0:1:1"],
  ["1:0:0:0:1:0:0:0", "1::1:0:0:0"],
  ["0:0:1:0:0:1:0:0", "::1:0:0:1:0:0"],
  ["::ffff:10.0.0.1", "10.0.0.1"],
  ["::ffff:a00:1", "10.0.0.1"],
  ["::10.0.0.1", "::a00:1"],
  ["fd00:10:244:1::2", "fd00:10:244:1::2"],
  ["::", "::"],
  ["::1", "::1"],
  ["1::", "1::"],
  ["fe80::1", "fe80::1"],
  ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"],
  ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ["0001::", "1::"],
  ["::FFFF:A00:1", "10.0.0.1"],
  ["0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4"],
  ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
  ["", undefined],
  ["10.0.0", undefined],
  ["010.0.0.1", undefined],
  ["1.2.3.04", undefined],
  ["10.0.0.256", undefined],
  ["fe80::1%eth0", undefined],
  ["10.0.0.1/24", undefined],
  [" 10.0.0.1", undefined],
  ["10.0.0.1 ", undefined],
  ["1.2.3.4.5", undefined],
  ["+1.2.3.4", undefined],
  ["0x1.2.3.4", undefined],
  ["1.2.3.-4", undefined],
  ["::ffff:01.2.3.4", undefined],
  ["1:2:3:4:5:6:7:1.2.3.4", undefined],
  ["1:2:3:4:5:6:7:8:9", undefined],
  ["1:2:3:4:5:6:7:8::", undefined],
  [":1::", undefined],
  ["1:::2", undefined],
  ["1::2::3", undefined],
  ["::1.2.3.4:5", undefined],
  ["1.2.3.4::", undefined],
  ["g::1", undefined],
  ["12345::", undefined],
  [":", undefined],
  ["1:2:3:4:5:6:7", undefined],
  ["::1.2.3", undefined],
  ["x", undefined],
];

/** [text, IPNet{ip, mask}.String() (host bits kept), IPNet.String() of the network] or [text, error] */
const PARSE_CIDR: Array<[string, string, string?]> = [
  ["10.244.1.7/24", "10.244.1.7/24", "10.244.1.0/24"],
  ["10.0.0.0/024", "10.0.0.0/24", "10.0.0.0/24"],
  ["10.0.0.0/0000024", "10.0.0.0/24", "10.0.0.0/24"],
  ["0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0"],
  ["::/0", "::/0", "::/0"],
  ["10.0.0.1/32", "10.0.0.1/32", "10.0.0.1/32"],
  ["fd00:0:0::7/64", "fd00::7/64", "fd00::/64"],
  ["FC00:0::/48", "fc00::/48", "fc00::/48"],
  ["fd00:10:244:1::7/64", "fd00:10:244:1::7/64", "fd00:10:244:1::/64"],
  // A 128-bit mask over a v4-mapped address: Go masks the 16-byte form, then prints the last 32 bits.
  ["::ffff:10.0.0.1/24", "10.0.0.1/0", "::/24"],
  ["::ffff:10.0.0.1/120", "10.0.0.1/24", "10.0.0.0/24"],
  ["::ffff:10.0.0.1/96", "10.0.0.1/0", "0.0.0.0/0"],
  ["::ffff:10.0.0.1/97", "10.0.0.1/1", "0.0.0.0/1"],
  ["::ffff:10.0.0.1/128", "10.0.0.1/32", "10.0.0.1/32"],
  ["10.0.0.0/33", "invalid CIDR address: 10.0.0.0/33"],
  ["fd00::/129", "invalid CIDR address: fd00::/129"],
  ["10.0.0.1/+8", "invalid CIDR address: 10.0.0.1/+8"],
  ["10.0.0.1/", "invalid CIDR address: 10.0.0.1/"],
  ["10.0.0.1/8/", "invalid CIDR address: 10.0.0.1/8/"],
  ["fe80::1%eth0/64", "invalid CIDR address: fe80::1%eth0/64"],
  ["10.0.0.1/ 8", "invalid CIDR address: 10.0.0.1/ 8"],
  ["10.0.0.1", "invalid CIDR address: 10.0.0.1"],
  ["/24", "invalid CIDR address: /24"],
  ["010.0.0.0/8", "invalid CIDR address: 010.0.0.0/8"],
  ["10.0.0.1/-1", "invalid CIDR address: 10.0.0.1/-1"],
  ["10.0.0.1/0x8", "invalid CIDR address: 10.0.0.1/0x8"],
  ["10.0.0.1/99999999999", "invalid CIDR address: 10.0.0.1/99999999999"],
];

/** [cidr, ip, network.Contains(ip), IPNet{ip with host bits, mask}.Contains(ip)] */
const CONTAINS: Array<[string, string, boolean, boolean]> = [
  ["10.244.0.0/16", "10.244.9.9", true, true],
  ["10.244.0.0/16", "10.245.0.1", false, false],
  ["10.244.0.0/16", "fd00::1", false, false],
  ["::ffff:10.0.0.0/120", "10.0.0.9", true, true],
  ["::ffff:10.0.0.0/120", "10.0.1.9", false, false],
  ["::ffff:10.0.0.1/24", "10.9.9.9", false, true],
  ["::/0", "10.0.0.1", false, false],
  ["0.0.0.0/0", "::1", false, false],
  ["::/0", "::ffff:10.0.0.1", false, false],
  ["10.0.0.0/8", "::ffff:10.1.2.3", true, true],
];

const ip = (s: string) => parseIp(s);
const cidr = (s: string) => parseCidr(s);
const text = (c: Cidr | undefined) => (c ? formatCidr(c) : undefined);

test("net.ParseIP's grammar and net.IP.String() (Go 1.19 table)", () => {
  for (const [input, printed] of PARSE_IP) {
    const parsed = tryParseIp(input);
    assert.is(parsed ? formatIp(parsed) : undefined, printed, JSON.stringify(input));
  }
});

test("parseIp throws the reference's text, tryParseIp does not throw", () => {
  assert.throws(
    () => parseIp("010.0.0.1"),
    (e: Error) => e.message === "invalid IP address: 010.0.0.1",
  );
  assert.is(tryParseIp("fe80::1%eth0"), undefined);
  assert.equal(parseIp("::ffff:10.0.0.1"), { family: 4, value: 0x0a000001n });
  assert.equal(parseIp("::1"), { family: 6, value: 1n });
});

test("net.ParseCIDR: the address keeps its host bits, the network clears them (Go 1.19 table)", () => {
  for (const [input, address, network] of PARSE_CIDR) {
    const label = JSON.stringify(input);
    if (network === undefined) {
      assert.is(tryParseCidr(input), undefined, label);
      assert.throws(
        () => parseCidr(input),
        (e: Error) => e.message === address,
        label,
      );
      continue;
    }
    assert.is(formatCidr(parseCidr(input)), address, label);
    assert.is(formatCidr(networkOf(parseCidr(input))), network, label);
  }
});

test("IPNet.Contains (Go 1.19 table)", () => {
  for (const [net, addr, ofNetwork, ofAddress] of CONTAINS) {
    const label = `${net} ${addr}`;
    assert.is(contains(networkOf(cidr(net)), ip(addr)), ofNetwork, label);
    assert.is(contains(cidr(net), ip(addr)), ofAddress, label);
  }
});

test("the mask's family is kept only where it differs from the address's", () => {
  assert.equal(parseCidr("10.0.0.5/24"), { ip: ip("10.0.0.5"), prefix: 24 });
  assert.equal(parseCidr("::ffff:10.0.0.0/120"), { ip: ip("10.0.0.0"), prefix: 120, maskFamily: 6 });
});

test("familyOfText goes by the colon", () => {
  assert.is(familyOfText("10.0.0.1/24"), 4);
  assert.is(familyOfText("fd00::1"), 6);
  assert.is(familyOfText("::ffff:10.0.0.1"), 6);
});

// Moved from ipam-address.test.ts (shared/ipam/address.ts).
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
  for (const [input, printed] of cases) assert.is(formatIp(tryParseIp(input)!), printed, input);
});

test("what Go's ParseIP refuses is refused", () => {
  for (const bad of ["", "10.0.0", "010.0.0.1", "10.0.0.256", "fe80::1%eth0", "10.0.0.1/24", " 10.0.0.1"]) {
    assert.is(tryParseIp(bad), undefined, bad);
  }
  assert.is(formatIp(tryParseIpOrCidr("10.0.0.9/8")!), "10.0.0.9");
  assert.equal(tryParseCidr("10.0.0.5/24")?.prefix, 24);
  assert.is(tryParseCidr("10.0.0.5/33"), undefined);
  assert.is(tryParseCidr("10.0.0.5"), undefined);
});

test("nextIp carries across octets and groups", () => {
  assert.is(formatIp(nextIp(ip("10.0.0.255"))), "10.0.1.0");
  assert.is(formatIp(nextIp(ip("fd00::ffff"))), "fd00::1:0");
  // ip.NextIP wraps at the top of the family.
  assert.is(formatIp(nextIp(ip("255.255.255.255"))), "0.0.0.0");
});

// Moved from net-ipnet.test.ts (shared/net/ipnet.ts).
test("parse and canonicalise", () => {
  assert.is(formatCidr(cidr("10.244.1.7/24")), "10.244.1.7/24");
  assert.is(formatCidr(cidr("fd00:0:0::7/64")), "fd00::7/64");
  assert.equal(cidr("fd00:0:0::7/64").ip.family, 6);
  assert.is(formatIp(ip("10.0.0.1")), "10.0.0.1");
  assert.throws(() => parseCidr("10.0.0.300/24"));
});

test("network and calcGatewayIP (network + 1)", () => {
  assert.is(text(networkOf(cidr("10.244.1.7/24"))), "10.244.1.0/24");
  assert.is(text(networkOf(cidr("fd00:10:244:1::7/64"))), "fd00:10:244:1::/64");
  assert.is(formatIp(firstHost(cidr("10.244.1.7/24"))), "10.244.1.1");
  assert.is(formatIp(firstHost(cidr("10.244.1.7/30"))), "10.244.1.5");
  assert.is(formatIp(firstHost(cidr("fd00:10:244:1::7/64"))), "fd00:10:244:1::1");
});

test("containment and overlap", () => {
  assert.ok(contains(cidr("10.244.0.0/16"), ip("10.244.9.9")));
  assert.not.ok(contains(cidr("10.244.0.0/16"), ip("10.245.0.1")));
  assert.not.ok(contains(cidr("10.244.0.0/16"), ip("fd00::1")));
  assert.ok(overlaps(cidr("fd00::/56"), cidr("fd00:0:0:1::1/64")));
  assert.not.ok(overlaps(cidr("fd00:1::/64"), cidr("fd00:2::/64")));
});

test("overlap is symmetric, needs one family, and a /0 overlaps its whole family", () => {
  assert.ok(overlaps(cidr("fd00:0:0:1::1/64"), cidr("fd00::/56")));
  assert.ok(overlaps(cidr("10.244.3.0/24"), cidr("10.244.3.128/25")));
  assert.not.ok(overlaps(cidr("10.244.3.0/25"), cidr("10.244.3.128/25")));
  assert.ok(overlaps(cidr("0.0.0.0/0"), cidr("192.0.2.1/32")));
  assert.not.ok(overlaps(cidr("0.0.0.0/0"), cidr("::/0")));
});

test("cidrEqual compares address and length, host bits included", () => {
  assert.ok(cidrEqual(cidr("fd00:1:0::1/64"), cidr("fd00:1::1/64")));
  assert.not.ok(cidrEqual(cidr("fd00:1::1/64"), cidr("fd00:1::1/65")));
  assert.not.ok(cidrEqual(cidr("10.0.0.1/24"), cidr("10.0.0.0/24")));
});

test("last address: the v4 broadcast, the v6 top of the prefix", () => {
  assert.is(formatIp(lastOf(cidr("10.244.3.0/24"))), "10.244.3.255");
  assert.is(formatIp(lastOf(cidr("10.244.3.9/30"))), "10.244.3.11");
  assert.is(formatIp(lastOf(cidr("fd00::/64"))), "fd00::ffff:ffff:ffff:ffff");
  assert.is(formatIp(lastOf(cidr("0.0.0.0/0"))), "255.255.255.255");
  assert.is(formatIp(lastOf(cidr("10.0.0.1/32"))), "10.0.0.1");
});

test("subnet carving: flannel's SubnetMin/SubnetMax, Next(), counts", () => {
  const network = cidr("10.244.0.0/16");
  assert.is(subnetCount(network, 24), 256n);
  assert.is(subnetCount(network, 16), 1n);
  assert.is(subnetCount(network, 15), 0n);
  assert.is(subnetCount(network, 33), 0n);
  assert.is(subnetCount(cidr("fc00::/48"), 64), 65536n);
  assert.is(subnetCount(cidr("::/0"), 128), 1n << 128n);
  // flanneld's defaults: SubnetMin skips the first subnet, SubnetMax is the last one.
  assert.is(text(nthSubnet(network, 24, 1)), "10.244.1.0/24");
  assert.is(text(nthSubnet(network, 24, 255n)), "10.244.255.0/24");
  assert.is(text(nthSubnet(cidr("10.244.7.9/16"), 24, 0)), "10.244.0.0/24");
  assert.is(text(nthSubnet(cidr("fc00::/48"), 64, 0x22)), "fc00:0:0:22::/64");
  assert.throws(() => nthSubnet(network, 24, 256), RangeError);
  assert.throws(() => nthSubnet(network, 24, -1), RangeError);
  assert.throws(() => nthSubnet(network, 8, 0), RangeError);
  assert.is(text(nextSubnet(cidr("10.244.1.0/24"))), "10.244.2.0/24");
  assert.is(text(nextSubnet(cidr("10.244.1.77/24"))), "10.244.2.0/24");
  assert.is(text(nextSubnet(cidr("10.244.255.0/24"))), "10.245.0.0/24");
  assert.is(text(nextSubnet(cidr("fc00:0:0:ffff::/64"))), "fc00:0:1::/64");
  assert.is(nextSubnet(cidr("255.255.255.0/24")), undefined);
  assert.is(nextSubnet(cidr("0.0.0.0/0")), undefined);
  assert.is(nextSubnet(cidr("ffff::/16")), undefined);
  // Walking every /30 of a /28 (lease exhaustion's shape) ends after four.
  const walked: string[] = [];
  for (let sn: Cidr | undefined = nthSubnet(cidr("10.9.0.0/28"), 30, 0); sn; sn = nextSubnet(sn)) {
    if (!contains(cidr("10.9.0.0/28"), sn.ip)) break;
    walked.push(text(sn)!);
  }
  assert.equal(walked, ["10.9.0.0/30", "10.9.0.4/30", "10.9.0.8/30", "10.9.0.12/30"]);
});

test.run();
