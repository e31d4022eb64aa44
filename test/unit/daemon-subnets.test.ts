import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Lease } from "../../daemon/lease.js";
import { parseNetConf } from "../../daemon/net-conf.js";
import {
  freeSubnets,
  holderOf,
  isCompatible,
  OutOfSubnetsError,
  pickSubnets,
  rangeOf,
} from "../../daemon/subnets.js";

const held = (...subnets: string[]): Lease[] =>
  subnets.map((subnet, i) => ({ subnet, attrs: { PublicIP: `192.0.2.${i + 1}`, PublicIPv6: null } }));

test("the candidates run from SubnetMin to SubnetMax in SubnetLen steps", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/28","SubnetLen":30}');
  const range = rangeOf(cfg, 4)!;
  assert.equal(
    freeSubnets(range, []).free.map((ip) => Number(ip & 0xffn)),
    [4, 8, 12],
  );
  assert.is(rangeOf(cfg, 6), undefined);
});

test("leases take their subnet and any candidate they overlap (flanneld's Overlaps), other lengths too", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/16"}');
  const scan = freeSubnets(rangeOf(cfg, 4)!, held("10.0.1.0/24", "10.0.2.0/23", "10.0.5.128/25"), 3);
  assert.equal(
    scan.free.map((ip) => Number((ip >> 8n) & 0xffn)),
    [4, 6, 7],
  );
  assert.is(scan.complete, false, "stopped at the limit");
});

test("the pick is random among the first 100 free, never beyond", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/8"}');
  assert.is(pickSubnets(cfg, [], () => 0).subnet, "10.0.1.0/24");
  assert.is(pickSubnets(cfg, [], () => 0.999999).subnet, "10.0.100.0/24");
  assert.is(pickSubnets(cfg, held("10.0.1.0/24"), () => 0).subnet, "10.0.2.0/24");
});

test("dual-stack: one subnet per family", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}');
  assert.equal(
    pickSubnets(cfg, [], () => 0),
    { subnet: "10.0.1.0/24", ipv6Subnet: "fc00:0:0:1::/64" },
  );
});

test("out of subnets: flanneld's words, then the range, the counts and the leases", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/28","SubnetLen":30}');
  try {
    pickSubnets(cfg, held("10.0.0.4/30", "10.0.0.8/30", "10.0.0.12/30", "10.0.0.0/30"));
    assert.unreachable();
  } catch (err) {
    assert.instance(err, OutOfSubnetsError);
    assert.is(
      (err as Error).message,
      "out of subnets: all 3 /30 subnets in 10.0.0.4/30 .. 10.0.0.12/30 are leased (3 used, 0 free; 4 leases in the store)",
    );
  }
});

test("compatibility: the right length inside [SubnetMin, SubnetMax], and no family the config lacks", async () => {
  const cfg = await parseNetConf('{"Network":"10.0.0.0/16","SubnetMin":"10.0.10.0","SubnetMax":"10.0.20.0"}');
  assert.ok(isCompatible(cfg, { subnet: "10.0.10.0/24" }));
  assert.ok(isCompatible(cfg, { subnet: "10.0.20.0/24" }));
  assert.not.ok(isCompatible(cfg, { subnet: "10.0.9.0/24" }), "below SubnetMin");
  assert.not.ok(isCompatible(cfg, { subnet: "10.0.21.0/24" }), "above SubnetMax");
  assert.not.ok(isCompatible(cfg, { subnet: "10.0.10.0/25" }), "other length");
  assert.not.ok(isCompatible(cfg, { subnet: "10.0.10.0/24", ipv6Subnet: "fc00::/64" }), "v6 not enabled");
  assert.not.ok(isCompatible(cfg, {}), "no v4 subnet");
});

test("holderOf finds the lease overlapping a subnet in either family", () => {
  const leases: Lease[] = [
    {
      subnet: "10.0.0.0/23",
      ipv6Subnet: "fc00:0:0:1::/64",
      attrs: { PublicIP: "192.0.2.1", PublicIPv6: null },
    },
  ];
  assert.is(holderOf(leases, { subnet: "10.0.1.0/24" })?.attrs.PublicIP, "192.0.2.1");
  assert.is(holderOf(leases, { subnet: "10.0.2.0/24" }), undefined);
  assert.ok(holderOf(leases, { subnet: "10.0.9.0/24", ipv6Subnet: "fc00:0:0:1::/64" }));
});

test.run();
