import { test } from "uvu";
import * as assert from "uvu/assert";
import type { LinkRecord } from "../../shared/net/link.js";
import { type VxlanLink, vxlanAdd, vxlanIncompatibility, vxlanInfo } from "../../shared/net/vxlan.js";

const want: VxlanLink = {
  name: "flannel.1",
  vni: 1,
  local: "192.168.77.1",
  dev: "eth0",
  port: 8472,
  learning: false,
  mac: "aa:bb:cc:dd:ee:01",
  mtu: 1450,
};

test("vxlanAdd: flanneld's device (id, local, dev, dstport, nolearning, a given MAC and MTU)", () => {
  assert.is(
    vxlanAdd(want).line,
    "link add name flannel.1 address aa:bb:cc:dd:ee:01 mtu 1450 type vxlan id 1 local 192.168.77.1 dev eth0 dstport 8472 nolearning",
  );
  assert.is(
    vxlanAdd({
      ...want,
      name: "flannel-v6.4",
      vni: 4,
      local: "fd77::1",
      learning: true,
      mac: undefined,
      mtu: undefined,
    }).line,
    "link add name flannel-v6.4 type vxlan id 4 local fd77::1 dev eth0 dstport 8472 learning",
  );
  assert.throws(() => vxlanAdd({ ...want, mac: "01:00:5e:00:00:01" }), /unicast/);
});

// As `ip -j -d link show flannel.1` prints it (iproute2 6.1).
const record = (data: Record<string, unknown>, kind = "vxlan"): LinkRecord =>
  ({
    ifindex: 4,
    ifname: "flannel.1",
    mtu: 1450,
    address: "aa:bb:cc:dd:ee:01",
    linkinfo: { info_kind: kind, info_data: data },
  }) as LinkRecord;
const same = {
  id: 1,
  local: "192.168.77.1",
  link: "eth0",
  port_range: { low: 0, high: 0 },
  port: 8472,
  learning: false,
  ttl: 0,
  ageing: 300,
  udp_csum: true,
};

test("vxlanInfo reads the attributes back; v6 local is local6", () => {
  assert.equal(vxlanInfo(record(same)), {
    vni: 1,
    local: "192.168.77.1",
    dev: "eth0",
    port: 8472,
    learning: false,
    l2miss: false,
    gbp: false,
  });
  assert.is(vxlanInfo(record({ ...same, local: undefined, local6: "fd77:0::1" }))?.local, "fd77::1");
  assert.is(vxlanInfo(record({}, "veth")), undefined);
});

test("a device like the wanted one is compatible", () => {
  assert.is(vxlanIncompatibility(want, record(same)), undefined);
  // MAC and MTU are fixed in place, not reasons to recreate.
  assert.is(
    vxlanIncompatibility(want, { ...record(same), mtu: 1400, address: "aa:bb:cc:dd:ee:99" }),
    undefined,
  );
});

test("each differing attribute makes it incompatible, named as flanneld names it", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ id: 2 }, "vni: 2 vs 1"],
    [{ local: "192.168.77.9" }, "vtep (external) IP: 192.168.77.9 vs 192.168.77.1"],
    [{ link: "eth1" }, "vtep (external) interface: eth1 vs eth0"],
    [{ link: undefined }, "vtep (external) interface: none vs eth0"],
    [{ port: 4789 }, "port: 4789 vs 8472"],
    [{ learning: true }, "learning: true vs false"],
    [{ group: "239.1.1.1" }, "group address: 239.1.1.1 vs none"],
    [{ l2miss: true }, "l2miss: true vs false"],
    [{ gbp: true }, "gbp: true vs false"],
  ];
  for (const [diff, reason] of cases)
    assert.is(vxlanIncompatibility(want, record({ ...same, ...diff })), reason);
  assert.is(vxlanIncompatibility(want, record(same, "bridge")), "link type: bridge vs vxlan");
});

test.run();
