/**
 * The daemon's kernel objects against the real kernel, inside a test namespace: a vxlan link made from
 * its command data and read back, neighbours and onlink routes through one ip batch, fdb entries
 * through the bridge batch executor; the parsers read what ip and bridge print.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bridgeBatch } from "../../shared/net/bridge-batch.js";
import { fdbDel, fdbRemotes, fdbReplace, fdbShow } from "../../shared/net/fdb.js";
import { IpBatchError, ipBatch } from "../../shared/net/ip.js";
import { type LinkRecord, linkShowIfExists } from "../../shared/net/link.js";
import { isPermanent, neighDel, neighReplace, neighShow, neighsOn } from "../../shared/net/neigh.js";
import {
  isProto,
  mainTableRoutes,
  routeDel,
  routeReplace,
  routeShow,
  routeSpecOf,
} from "../../shared/net/route.js";
import { type VxlanLink, vxlanAdd, vxlanIncompatibility } from "../../shared/net/vxlan.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";

const s = suite("kernel objects: vxlan, neigh, fdb, route");
let ns: TestNetns;
const want: VxlanLink = {
  name: "flannel.1",
  vni: 1,
  local: "192.168.5.1",
  dev: "d0",
  port: 8472,
  learning: false,
  mac: "aa:bb:cc:dd:ee:01",
  mtu: 1450,
};

s.before(() => {
  assertRoot();
  ns = TestNetns.create("wob");
  ns.exec(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec(["ip", "addr", "add", "192.168.5.1/24", "dev", "d0"]);
  ns.exec(["ip", "link", "set", "d0", "up"]);
  ns.exec(["ip", "link", "set", "d1", "up"]);
});
s.after(() => ns?.delete());

const link = async (name: string) =>
  (await ipBatch([linkShowIfExists(name)], { netns: ns.path, details: true }))[0]?.[0] as
    | LinkRecord
    | undefined;

s("a vxlan link made from vxlanAdd reads back compatible; another port is not", async () => {
  await ipBatch([vxlanAdd(want), { line: "link set dev flannel.1 up", what: "up" }], { netns: ns.path });
  const rec = await link("flannel.1");
  assert.ok(rec);
  assert.is(rec.address, "aa:bb:cc:dd:ee:01");
  assert.is(rec.mtu, 1450);
  assert.is(vxlanIncompatibility(want, rec), undefined);
  assert.is(vxlanIncompatibility({ ...want, port: 4789 }, rec), "port: 8472 vs 4789");
  assert.is(vxlanIncompatibility({ ...want, vni: 2 }, rec), "vni: 1 vs 2");
});

s("neighbour and onlink route in one batch; read back, filtered, deleted", async () => {
  await ipBatch(
    [
      neighReplace({ ip: "10.244.2.0", mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1" }),
      routeReplace({ dst: "10.244.2.0/24", gw: "10.244.2.0", dev: "flannel.1", onlink: true, proto: 87 }),
    ],
    { netns: ns.path },
  );
  const [routes, neighs] = await ipBatch([routeShow(4), neighShow()], { netns: ns.path });
  const ours = mainTableRoutes(routes).filter((r) => isProto(r, 87));
  assert.equal(
    ours.map((r) => [r.dst, r.gateway, r.dev, r.flags]),
    [["10.244.2.0/24", "10.244.2.0", "flannel.1", ["onlink"]]],
  );
  const on = neighsOn(neighs, "flannel.1");
  assert.is(on.length, 1);
  assert.is(on[0]!.lladdr, "aa:bb:cc:dd:ee:02");
  assert.ok(isPermanent(on[0]!));
  assert.is(
    ns.exec(["ip", "route", "show", "proto", "87"]).trim(),
    "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
  );

  // A second delete of the same route is tolerated (ESRCH).
  const del = routeDel(routeSpecOf(ours[0]!, 4));
  await ipBatch([del, del, neighDel({ ip: "10.244.2.0", dev: "flannel.1" })], { netns: ns.path });
  const [after, neighsAfter] = await ipBatch([routeShow(4), neighShow()], { netns: ns.path });
  assert.is(mainTableRoutes(after).filter((r) => isProto(r, 87)).length, 0);
  assert.is(neighsOn(neighsAfter, "flannel.1").length, 0);
});

s("route del names the protocol: another protocol's route to the same place stays", async () => {
  ns.exec(["ip", "route", "add", "10.244.5.0/24", "via", "192.168.5.5", "dev", "d0"]);
  await ipBatch([routeDel({ dst: "10.244.5.0/24", gw: "192.168.5.5", dev: "d0", proto: 87 })], {
    netns: ns.path,
  });
  assert.match(ns.exec(["ip", "route", "show", "10.244.5.0/24"]), "10.244.5.0/24 via 192.168.5.5 dev d0");
  ns.exec(["ip", "route", "del", "10.244.5.0/24"]);
});

s("fdb entries through the bridge batch: replace, read, delete (twice), missing device", async () => {
  const e = { mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1", dst: "192.168.5.2" };
  await bridgeBatch([fdbReplace(e)], { netns: ns.path });
  // Replace moves the MAC to another remote instead of adding one.
  await bridgeBatch([fdbReplace({ ...e, dst: "192.168.5.3" })], { netns: ns.path });
  const [read] = await bridgeBatch([fdbShow("flannel.1")], { netns: ns.path });
  assert.equal(fdbRemotes(read), [{ mac: "aa:bb:cc:dd:ee:02", dst: "192.168.5.3", permanent: true }]);
  assert.match(
    ns.exec(["bridge", "fdb", "show", "dev", "flannel.1"]),
    "aa:bb:cc:dd:ee:02 dst 192.168.5.3 self permanent",
  );

  const gone = { ...e, dst: "192.168.5.3" };
  const [, , missing] = await bridgeBatch([fdbDel(gone), fdbDel(gone), fdbShow("nope0")], { netns: ns.path });
  assert.is(missing, undefined, "a missing device reads as undefined");
  const [empty] = await bridgeBatch([fdbShow("flannel.1")], { netns: ns.path });
  assert.equal(fdbRemotes(empty), []);
});

s("a failing bridge command is reported with its description and bridge's words", async () => {
  const err = await bridgeBatch(
    [
      fdbReplace({ mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1", dst: "192.168.5.2" }),
      {
        line: "fdb add aa:bb:cc:dd:ee:09 dev nope0 self permanent",
        what: "add to a missing device",
      },
    ],
    { netns: ns.path },
  ).catch((e: unknown) => e);
  assert.instance(err, IpBatchError);
  assert.is((err as IpBatchError).index, 1);
  assert.is((err as IpBatchError).message, 'add to a missing device: Cannot find device "nope0"');
});

s("sysctls go with the bridge batch into the namespace", async () => {
  await bridgeBatch([], {
    netns: ns.path,
    sysctls: [{ key: "net/ipv6/conf/flannel.1/accept_ra", value: "0" }],
  });
  assert.is(ns.exec(["sysctl", "-n", "net.ipv6.conf.flannel/1.accept_ra"]).trim(), "0");
  await bridgeBatch([], {
    netns: ns.path,
    sysctls: [{ key: "net/ipv6/conf/flannel.1/accept_ra", value: "1" }],
  });
  assert.is(ns.exec(["sysctl", "-n", "net.ipv6.conf.flannel/1.accept_ra"]).trim(), "1");
});

s.run();
