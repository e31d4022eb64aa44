/**
 * The vxlan backend on three underlay nodes, driven directly with hand-made leases: flannel.1 and, per
 * remote lease, the permanent neighbour, the fdb entry and the onlink route in flanneld's shapes; pods
 * reach pods; reconcile is level-triggered (lease gone, route / device deleted by hand, stale entries,
 * MAC drift, foreign addresses), the MAC is kept across restarts and an incompatible device recreated;
 * DirectRouting on one L2 segment routes via the public IP.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { VxlanBackend } from "../../daemon/backend/vxlan.js";
import { encodeLeaseAttrs, type Lease, type LeaseAttrs } from "../../daemon/lease.js";
import { assertRoot } from "../helpers/netns.js";
import { Underlay } from "../helpers/underlay.js";
import {
  destroyAll,
  ipLines,
  netConfig,
  type PodNode,
  pings,
  podBehind,
  TestLog,
} from "./backend-harness.js";

const s = suite("backend vxlan");
let u: Underlay;
let nodes: PodNode[] = [];
let leases: Lease[] = [];
let backends: VxlanBackend[] = [];
let macs: string[] = [];
const tlog = new TestLog();
const config = netConfig({ type: "vxlan" });
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

s.before(async () => {
  assertRoot();
  u = Underlay.create(3);
  nodes = [];
  for (const [i, node] of u.nodes.entries()) nodes.push(await podBehind(node, `10.244.${i + 1}.0/24`));
  backends = nodes.map((n) => new VxlanBackend({ netns: n.node.netns.path }));
  macs = [];
  leases = [];
  for (const [i, b] of backends.entries()) {
    const out = await b.prepare({ config, ext: nodes[i]!.ext, log: tlog.log.with({ node: i }) });
    assert.is(out.mtu, 1450);
    const data = out.attrs.BackendData as { VNI: number; VtepMAC: string };
    assert.equal(Object.keys(data), ["VNI", "VtepMAC"]);
    assert.is(data.VNI, 1);
    assert.match(data.VtepMAC, MAC);
    macs.push(data.VtepMAC);
    leases.push({
      subnet: nodes[i]!.subnet,
      attrs: { PublicIP: nodes[i]!.node.ip, PublicIPv6: null, ...out.attrs },
    });
  }
});
s.after(() => {
  if (process.env.KEEP_LOG) console.log(tlog.lines().join("\n"));
  destroyAll(u, nodes);
  tlog.remove();
});

const others = (i: number) => leases.filter((_, j) => j !== i);
const reconcileAll = async () => {
  for (const [i, b] of backends.entries()) await b.reconcile(leases[i]!, others(i));
};
const node = (i: number) => nodes[i]!.node;
const routes87 = (i: number) => ipLines(node(i), ["route", "show"]).filter((l) => l.includes("proto 87"));
const neighs = (i: number) => ipLines(node(i), ["neigh", "show", "dev", "flannel.1"]);
const fdb = (i: number) =>
  node(i).netns.exec(["bridge", "fdb", "show", "dev", "flannel.1"]).trim().split("\n").filter(Boolean);
const linkOf = (i: number) =>
  node(i).netns.ipJson<Array<{ address: string; mtu: number; flags: string[] }>>([
    "-d",
    "link",
    "show",
    "flannel.1",
  ])[0]!;
// What the backend owns (IPv4 here): the kernel's own IPv6 link-local set-up (DAD, its local routes)
// goes on changing by itself for a while after the device came up.
const state = (i: number) => [
  ipLines(node(i), ["-d", "link", "show", "flannel.1"]),
  ipLines(node(i), ["-4", "addr", "show", "dev", "flannel.1"]),
  ipLines(node(i), ["-4", "route", "show", "table", "all"]),
  neighs(i),
  fdb(i),
];

s("prepare: flannel.1 as flanneld makes it; the lease value is flanneld's", () => {
  const d = ipLines(node(0), ["-d", "link", "show", "flannel.1"]).join(" ");
  assert.match(d, "mtu 1450");
  assert.match(d, `link/ether ${macs[0]} brd ff:ff:ff:ff:ff:ff`);
  assert.match(d, "vxlan id 1 local 192.168.77.1 dev eth0 srcport 0 0 dstport 8472 nolearning");
  assert.is(node(0).netns.exec(["sysctl", "-n", "net.ipv6.conf.flannel/1.accept_ra"]).trim(), "0");
  assert.is(
    encodeLeaseAttrs(leases[0]!.attrs),
    `{"PublicIP":"192.168.77.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macs[0]}"}}`,
  );
});

s("reconcile: address, neighbour, fdb entry and onlink route per remote lease; pods reach pods", async () => {
  await reconcileAll();
  assert.ok(
    ipLines(node(0), ["addr", "show", "dev", "flannel.1"]).includes(
      "inet 10.244.1.0/32 scope global flannel.1",
    ),
  );
  assert.ok(linkOf(0).flags.includes("UP"));
  assert.equal(routes87(0), [
    "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink",
    "10.244.3.0/24 via 10.244.3.0 dev flannel.1 proto 87 onlink",
  ]);
  assert.equal(neighs(0).sort(), [
    `10.244.2.0 lladdr ${macs[1]} PERMANENT`,
    `10.244.3.0 lladdr ${macs[2]} PERMANENT`,
  ]);
  // Sorted both sides: the MACs are random.
  assert.equal(
    fdb(0).sort(),
    [`${macs[1]} dst 192.168.77.2 self permanent`, `${macs[2]} dst 192.168.77.3 self permanent`].sort(),
  );
  tlog.fresh(); // what the first reconcile logged (device set-up)
  for (const a of nodes)
    for (const b of nodes) if (a !== b) assert.ok(pings(a.pod, b.podIp), `${a.podIp} -> ${b.podIp}`);
});

s("a second reconcile with the same leases changes nothing and says nothing", async () => {
  const before = nodes.map((_, i) => state(i));
  await reconcileAll();
  assert.equal(
    nodes.map((_, i) => state(i)),
    before,
  );
  assert.equal(tlog.fresh(), []);
});

s("a route deleted by hand comes back on the next reconcile", async () => {
  node(0).netns.exec(["ip", "route", "del", "10.244.2.0/24"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(routes87(0).includes("10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink"));
  assert.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
  assert.ok(tlog.fresh().some((l) => l.includes("Route recovered 10.244.2.0/24 : 10.244.2.0")));
});

s("the device deleted by hand comes back with the same MAC and every lease replayed", async () => {
  node(0).netns.exec(["ip", "link", "del", "flannel.1"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.is(linkOf(0).address, macs[0]);
  assert.is(linkOf(0).mtu, 1450);
  assert.is(node(0).netns.exec(["sysctl", "-n", "net.ipv6.conf.flannel/1.accept_ra"]).trim(), "0");
  assert.equal(routes87(0).length, 2);
  assert.equal(neighs(0).length, 2);
  assert.equal(fdb(0).length, 2);
  for (const b of nodes.slice(1)) assert.ok(pings(nodes[0]!.pod, b.podIp));
  const lines = tlog.fresh();
  assert.ok(
    lines.some((l) => l.includes("flannel.1 is missing")),
    lines.join("\n"),
  );
});

s("reconciles called at once (a lease event during the periodic one) run one after the other", async () => {
  node(0).netns.exec(["ip", "link", "del", "flannel.1"]);
  await Promise.all([
    backends[0]!.reconcile(leases[0]!, others(0)),
    backends[0]!.reconcile(leases[0]!, others(0)),
    backends[0]!.reconcile(leases[0]!, others(0)),
  ]);
  assert.is(linkOf(0).address, macs[0]);
  assert.equal(routes87(0).length, 2);
  tlog.fresh();
});

s(
  "stale route, neighbour and fdb entry no lease backs are removed; foreign addresses in the network too",
  async () => {
    const n = node(0).netns;
    n.exec([
      "ip",
      "route",
      "add",
      "10.244.9.0/24",
      "via",
      "10.244.9.0",
      "dev",
      "flannel.1",
      "onlink",
      "proto",
      "87",
    ]);
    n.exec(["ip", "route", "add", "10.244.8.0/24", "via", "192.168.77.8", "dev", "eth0", "proto", "87"]);
    n.exec([
      "ip",
      "neigh",
      "replace",
      "10.244.9.0",
      "lladdr",
      "02:00:00:00:00:09",
      "dev",
      "flannel.1",
      "nud",
      "permanent",
    ]);
    n.exec([
      "bridge",
      "fdb",
      "append",
      "02:00:00:00:00:09",
      "dev",
      "flannel.1",
      "dst",
      "192.168.77.9",
      "self",
      "permanent",
    ]);
    n.exec(["ip", "addr", "add", "10.244.99.0/32", "dev", "flannel.1"]);
    n.exec(["ip", "addr", "add", "172.16.5.5/32", "dev", "flannel.1"]);
    await backends[0]!.reconcile(leases[0]!, others(0));
    assert.equal(routes87(0), [
      "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink",
      "10.244.3.0/24 via 10.244.3.0 dev flannel.1 proto 87 onlink",
    ]);
    assert.equal(neighs(0).length, 2);
    assert.equal(fdb(0).length, 2);
    const addrs = ipLines(node(0), ["addr", "show", "dev", "flannel.1"]).filter((l) => l.startsWith("inet "));
    assert.equal(addrs, [
      "inet 10.244.1.0/32 scope global flannel.1",
      "inet 172.16.5.5/32 scope global flannel.1",
    ]);
    n.exec(["ip", "addr", "del", "172.16.5.5/32", "dev", "flannel.1"]);
    tlog.fresh();
  },
);

s("a MAC or MTU changed under the device is set back", async () => {
  node(0).netns.exec(["ip", "link", "set", "flannel.1", "address", "02:aa:00:00:00:01", "mtu", "1400"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.is(linkOf(0).address, macs[0]);
  assert.is(linkOf(0).mtu, 1450);
  assert.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
  assert.ok(tlog.fresh().some((l) => l.includes("MAC")));
});

s("a lease gone takes its neighbour, fdb entry and route; it comes back with the lease", async () => {
  await backends[0]!.reconcile(leases[0]!, [leases[1]!]);
  assert.equal(routes87(0), ["10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink"]);
  assert.equal(neighs(0), [`10.244.2.0 lladdr ${macs[1]} PERMANENT`]);
  assert.equal(fdb(0), [`${macs[1]} dst 192.168.77.2 self permanent`]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(pings(nodes[0]!.pod, nodes[2]!.podIp));
});

s("a lease whose VtepMAC or public IP changed is reprogrammed", async () => {
  const moved: Lease = {
    ...leases[2]!,
    attrs: { ...leases[2]!.attrs, BackendData: { VNI: 1, VtepMAC: "02:00:00:00:00:33" } },
  };
  await backends[0]!.reconcile(leases[0]!, [leases[1]!, moved]);
  assert.ok(neighs(0).includes("10.244.3.0 lladdr 02:00:00:00:00:33 PERMANENT"));
  assert.ok(fdb(0).includes("02:00:00:00:00:33 dst 192.168.77.3 self permanent"));
  assert.equal(fdb(0).length, 2);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(pings(nodes[0]!.pod, nodes[2]!.podIp));
  tlog.fresh();
});

s("a restart keeps the MAC: of the existing device, else of the previous lease", async () => {
  const again = new VxlanBackend({ netns: node(1).netns.path });
  const out = await again.prepare({ config, ext: nodes[1]!.ext, log: tlog.log });
  assert.is((out.attrs.BackendData as { VtepMAC: string }).VtepMAC, macs[1]);

  node(1).netns.exec(["ip", "link", "del", "flannel.1"]);
  const fresh = new VxlanBackend({ netns: node(1).netns.path });
  const previous: LeaseAttrs = leases[1]!.attrs;
  const out2 = await fresh.prepare({ config, ext: nodes[1]!.ext, previous, log: tlog.log });
  assert.is((out2.attrs.BackendData as { VtepMAC: string }).VtepMAC, macs[1]);
  assert.is(linkOf(1).address, macs[1]);
  await fresh.reconcile(leases[1]!, others(1));
  backends[1] = fresh;
  assert.ok(pings(nodes[1]!.pod, nodes[0]!.podIp));
  tlog.fresh();
});

s("an incompatible device (other port, other VNI) is recreated, keeping its MAC", async () => {
  const n = node(2).netns;
  n.exec(["ip", "link", "del", "flannel.1"]);
  n.exec([
    "ip",
    "link",
    "add",
    "flannel.1",
    "address",
    macs[2]!,
    "type",
    "vxlan",
    "id",
    "1",
    "local",
    node(2).ip,
    "dev",
    "eth0",
    "dstport",
    "4789",
  ]);
  const b = new VxlanBackend({ netns: n.path });
  const out = await b.prepare({ config, ext: nodes[2]!.ext, log: tlog.log });
  assert.is((out.attrs.BackendData as { VtepMAC: string }).VtepMAC, macs[2]);
  const d = ipLines(node(2), ["-d", "link", "show", "flannel.1"]).join(" ");
  assert.match(d, "dstport 8472 nolearning");
  const lines = tlog.fresh();
  assert.ok(
    lines.some((l) =>
      l.includes(
        '\\"flannel.1\\" already exists with incompatible configuration: port: 4789 vs 8472; recreating device',
      ),
    ),
    lines.join("\n"),
  );
  // Someone recreates it with another VNI while the daemon runs: the next reconcile puts it right.
  n.exec(["ip", "link", "del", "flannel.1"]);
  n.exec([
    "ip",
    "link",
    "add",
    "flannel.1",
    "type",
    "vxlan",
    "id",
    "7",
    "local",
    node(2).ip,
    "dev",
    "eth0",
    "dstport",
    "8472",
    "nolearning",
  ]);
  await b.reconcile(leases[2]!, others(2));
  assert.match(ipLines(node(2), ["-d", "link", "show", "flannel.1"]).join(" "), "vxlan id 1 ");
  assert.is(linkOf(2).address, macs[2]);
  backends[2] = b;
  for (const o of nodes.slice(0, 2)) assert.ok(pings(nodes[2]!.pod, o.podIp));
  tlog.fresh();
});

s("DirectRouting: peers on the same L2 segment get a plain route via their public IP, and back", async () => {
  const direct = new VxlanBackend({ netns: node(0).netns.path });
  const dconfig = netConfig({ type: "vxlan", directRouting: true });
  await direct.prepare({ config: dconfig, ext: nodes[0]!.ext, log: tlog.log });
  await direct.reconcile(leases[0]!, others(0));
  assert.equal(routes87(0), [
    "10.244.2.0/24 via 192.168.77.2 dev eth0 proto 87",
    "10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87",
  ]);
  assert.equal(neighs(0), []);
  assert.equal(fdb(0), []);
  for (const b of nodes.slice(1)) assert.ok(pings(nodes[0]!.pod, b.podIp));
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.equal(routes87(0), [
    "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink",
    "10.244.3.0/24 via 10.244.3.0 dev flannel.1 proto 87 onlink",
  ]);
  assert.equal(neighs(0).length, 2);
  tlog.fresh();
});

s("Port and MTU from the config: dstport and (MTU - 50)", async () => {
  const u2 = Underlay.create(1, { subnet24: "192.168.78" });
  try {
    const p = await podBehind(u2.nodes[0]!, "10.244.1.0/24");
    try {
      const b = new VxlanBackend({ netns: u2.nodes[0]!.netns.path });
      const out = await b.prepare({
        config: netConfig({ type: "vxlan", vni: 4, port: 4789, mtu: 1400 }),
        ext: p.ext,
        log: tlog.log,
      });
      assert.is(out.mtu, 1350);
      const d = ipLines(u2.nodes[0]!, ["-d", "link", "show", "flannel.4"]).join(" ");
      assert.match(d, "mtu 1350");
      assert.match(d, "vxlan id 4 local 192.168.78.1 dev eth0 srcport 0 0 dstport 4789 nolearning");
    } finally {
      p.pod.delete();
    }
  } finally {
    u2.destroy();
  }
  tlog.fresh();
});

s.run();
