import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NetConf } from "../../shared/cni/types.js";
import { type IpamConfig, loadIpamConfig } from "../../shared/ipam/config.js";
import { canonicalizeRange, rangeString } from "../../shared/ipam/range.js";
import { rangeSetString } from "../../shared/ipam/range-set.js";
import { formatIp, tryParseCidr } from "../../shared/net/ipaddr.js";
import { cniErrorOf } from "../helpers/cni-error.js";

function conf(ipam: Record<string, unknown> | undefined, extra: Partial<NetConf> = {}): NetConf {
  const c: NetConf = { cniVersion: "1.0.0", name: "net", type: "host-local", ...extra };
  if (ipam) c.ipam = { type: "host-local", ...ipam };
  return c;
}

function load(ipam: Record<string, unknown> | undefined, extra: Partial<NetConf> = {}, env = ""): IpamConfig {
  return loadIpamConfig(conf(ipam, extra), env);
}

function sets(cfg: IpamConfig): string[] {
  return cfg.ranges.map(rangeSetString);
}

const canon = (subnet: string, more: Record<string, string> = {}) => {
  const r = canonicalizeRange({
    subnet: tryParseCidr(subnet),
    rangeStart: more.rangeStart ? tryParseCidr(`${more.rangeStart}/32`)?.ip : undefined,
  });
  return { range: rangeString(r), gateway: formatIp(r.gateway) };
};

test("range defaults: v4 skips network and broadcast, gateway is .1", () => {
  assert.equal(canon("192.0.2.0/24"), { range: "192.0.2.1-192.0.2.254", gateway: "192.0.2.1" });
  assert.equal(canon("10.1.17.0/30"), { range: "10.1.17.1-10.1.17.2", gateway: "10.1.17.1" });
});

test("range defaults: v6 ends at the very last address (not ::255 as the old docs said)", () => {
  assert.equal(canon("2001:db8:1::/64"), {
    // Go does not compress a single zero group (RFC 5952).
    range: "2001:db8:1::1-2001:db8:1:0:ffff:ffff:ffff:ffff",
    gateway: "2001:db8:1::1",
  });
  assert.equal(canon("fd00::/126"), { range: "fd00::1-fd00::3", gateway: "fd00::1" });
});

for (const [subnet, printed] of [
  ["10.0.0.0/31", "10.0.0.0/31"],
  ["10.0.0.1/32", "10.0.0.1/32"],
  ["fd00::/127", "fd00::/127"],
  ["fd00::1/128", "fd00::1/128"],
]) {
  test(`${subnet} is too small to allocate from`, () => {
    const e = cniErrorOf(() => load({ ranges: [[{ subnet }]] }));
    assert.is(e.msg, `invalid range set 0: Network ${printed} too small to allocate from`);
    assert.is(e.code, 7);
  });
}

test("a subnet with host bits set is rejected with the network address", () => {
  const e = cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.5/24" }]] }));
  assert.is(
    e.msg,
    "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0",
  );
});

test("rangeStart and rangeEnd must lie in the subnet (and in order)", () => {
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }]] })).msg,
    "invalid range set 0: RangeStart 10.0.1.5 not in network 10.0.0.0/24",
  );
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "10.0.1.0" }]] })).msg,
    "invalid range set 0: RangeEnd 10.0.1.0 not in network 10.0.0.0/24",
  );
  // A given rangeEnd bounds rangeStart's check, as in the reference.
  assert.is(
    cniErrorOf(() =>
      load({ ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.5" }]] }),
    ).msg,
    "invalid range set 0: RangeStart 10.0.0.9 not in network 10.0.0.0/24",
  );
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "fd00::/64", rangeStart: "10.0.0.1" }]] })).msg,
    "invalid range set 0: RangeStart 10.0.0.1 not in network fd00::/64",
  );
});

test("a gateway outside the subnet is accepted (the reference no longer checks it)", () => {
  const cfg = load({ ranges: [[{ subnet: "10.0.0.0/24", gateway: "10.9.9.9" }]] });
  assert.is(formatIp(cfg.ranges[0]![0]!.gateway), "10.9.9.9");
});

test("a set is one family and its ranges do not overlap", () => {
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] })).msg,
    "invalid range set 0: mixed address families",
  );
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/25" }]] })).msg,
    "invalid range set 0: subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap",
  );
  // Same subnet, disjoint start/end: allowed.
  const ok = load({
    ranges: [
      [
        { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" },
        { subnet: "10.0.0.0/24", rangeStart: "10.0.0.20", rangeEnd: "10.0.0.29" },
      ],
    ],
  });
  assert.equal(sets(ok), ["10.0.0.10-10.0.0.19,10.0.0.20-10.0.0.29"]);
});

test("sets must not overlap each other", () => {
  assert.is(
    cniErrorOf(() =>
      load({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }], [{ subnet: "10.0.0.0/16" }]] }),
    ).msg,
    "range set 0 overlaps with 2",
  );
});

test("empty sets, no ranges and no ipam are the reference's errors", () => {
  assert.is(cniErrorOf(() => load({ ranges: [[]] })).msg, "invalid range set 0: empty range set");
  assert.is(cniErrorOf(() => load({ ranges: [] })).msg, "no IP ranges specified");
  assert.is(cniErrorOf(() => load({})).msg, "no IP ranges specified");
  assert.is(cniErrorOf(() => load(undefined)).msg, "IPAM config missing 'ipam' key");
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ rangeStart: "10.0.0.1" }]] })).msg,
    "invalid range set 0: IP <nil> not v4 nor v6",
  );
});

test("malformed addresses fail with Go's decoding messages", () => {
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0" }]] })).msg,
    "invalid CIDR address: 10.0.0.0",
  );
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/33" }]] })).msg,
    "invalid CIDR address: 10.0.0.0/33",
  );
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24", gateway: "10.0.0.x" }]] })).msg,
    "invalid IP address: 10.0.0.x",
  );
  assert.is(cniErrorOf(() => load({ subnet: "" })).msg, "invalid CIDR address: ");
  assert.is(
    cniErrorOf(() => load({ ranges: [[{ subnet: "10.0.0.0/24" }]] }, { args: { cni: { ips: ["nope"] } } }))
      .msg,
    "invalid IP address nope",
  );
});

test("legacy top-level subnet is prepended as its own set, runtime ipRanges before it", () => {
  const cfg = load(
    {
      subnet: "10.5.0.0/24",
      rangeStart: "10.5.0.10",
      gateway: "10.5.0.254",
      ranges: [[{ subnet: "10.7.0.0/24" }], [{ subnet: "fd00:7::/64" }]],
    },
    { runtimeConfig: { ipRanges: [[{ subnet: "10.6.0.0/24" }]] } },
  );
  assert.equal(sets(cfg), [
    "10.6.0.1-10.6.0.254",
    "10.5.0.10-10.5.0.254",
    "10.7.0.1-10.7.0.254",
    "fd00:7::1-fd00:7::ffff:ffff:ffff:ffff",
  ]);
  assert.is(formatIp(cfg.ranges[1]![0]!.gateway), "10.5.0.254");
});

test("before 0.3.0 at most one set per family", () => {
  const two = { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.1.0.0/24" }]] };
  assert.is(
    cniErrorOf(() => load(two, { cniVersion: "0.2.0" })).msg,
    "CNI version 0.2.0 does not support more than 1 address per family",
  );
  assert.is(
    load({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]] }, { cniVersion: "0.2.0" }).ranges
      .length,
    2,
  );
  assert.is(load(two, { cniVersion: "0.3.0" }).ranges.length, 2);
});

test("requested IPs: CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips, prefix dropped", () => {
  const cfg = load(
    { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]] },
    { args: { cni: { ips: ["10.0.0.20/8", "fd00::20"] } }, runtimeConfig: { ips: ["10.0.0.30"] } },
    "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.0.0.10/24",
  );
  assert.equal(cfg.requestedIps.map(formatIp), ["10.0.0.10", "10.0.0.20", "fd00::20", "10.0.0.30"]);
});

test("CNI_ARGS IP= takes a comma list, one request per entry (the reference takes a single address)", () => {
  const cfg = load(
    { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }]] },
    {},
    "IgnoreUnknown=1;IP=10.0.0.10/24, fd00::10",
  );
  assert.equal(cfg.requestedIps.map(formatIp), ["10.0.0.10", "fd00::10"]);
  const ipam = { ranges: [[{ subnet: "10.0.0.0/24" }]] };
  assert.is(
    cniErrorOf(() => load(ipam, {}, "IP=10.0.0.10,10.0.0.300")).msg,
    'ARGS: error parsing value of pair "IP=10.0.0.10,10.0.0.300": invalid IP address 10.0.0.300',
  );
});

test("CNI_ARGS: unknown keys need IgnoreUnknown, a bad IP is LoadArgs' error, an empty IP is none", () => {
  const ipam = { ranges: [[{ subnet: "10.0.0.0/24" }]] };
  assert.is(cniErrorOf(() => load(ipam, {}, "FOO=bar")).msg, 'ARGS: unknown args ["FOO=bar"]');
  assert.is(
    cniErrorOf(() => load(ipam, {}, "IP=10.0.0.300")).msg,
    'ARGS: error parsing value of pair "IP=10.0.0.300": invalid IP address 10.0.0.300',
  );
  assert.equal(load(ipam, {}, "IP=").requestedIps, []);
});

test("routes are copied with addresses normalised like Go re-marshals them", () => {
  const cfg = load({
    ranges: [[{ subnet: "10.0.0.0/24" }]],
    routes: [
      { dst: "0.0.0.0/0" },
      { dst: "fd00:0::0/8", gw: "FD00::1" },
      { dst: "10.9.0.0/16", gw: "10.0.0.1", mtu: 1400 },
    ],
  });
  assert.equal(cfg.routes, [
    { dst: "0.0.0.0/0" },
    { dst: "fd00::/8", gw: "fd00::1" },
    { dst: "10.9.0.0/16", gw: "10.0.0.1", mtu: 1400 },
  ]);
});

test("dataDir defaults to /var/lib/cni/networks", () => {
  assert.is(load({ ranges: [[{ subnet: "10.0.0.0/24" }]] }).dataDir, "/var/lib/cni/networks");
  assert.is(load({ ranges: [[{ subnet: "10.0.0.0/24" }]], dataDir: "/tmp/x" }).dataDir, "/tmp/x");
});

test.run();
