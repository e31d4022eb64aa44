/**
 * The host-gw backend on three underlay nodes, driven directly with hand-made leases: each node routes
 * the others' pod subnets via their public IPs (flanneld's shape, tagged proto 87), pods reach pods,
 * and reconcile is level-triggered: a lease gone takes its route, a route deleted by hand comes back,
 * a stale proto-87 route no lease backs goes, and nothing changes when nothing differs.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HostGwBackend } from "../../daemon/backend/host-gw.js";
import type { Lease } from "../../daemon/lease.js";
import { assertRoot } from "../helpers/netns.js";
import { Underlay } from "../helpers/underlay.js";
import {
  destroyAll,
  ipLines,
  leaseOf,
  netConfig,
  type PodNode,
  pings,
  podBehind,
  TestLog,
} from "./backend-harness.js";

const s = suite("backend host-gw");
let u: Underlay;
let nodes: PodNode[] = [];
let leases: Lease[] = [];
let backends: HostGwBackend[] = [];
const tlog = new TestLog();
const config = netConfig({ type: "host-gw" });

s.before(async () => {
  assertRoot();
  u = Underlay.create(3);
  nodes = [];
  for (const [i, node] of u.nodes.entries()) nodes.push(await podBehind(node, `10.244.${i + 1}.0/24`));
  leases = nodes.map((n) => leaseOf(n.subnet, n.node.ip, { type: "host-gw" }));
  backends = nodes.map((n) => new HostGwBackend({ netns: n.node.netns.path }));
  for (const [i, b] of backends.entries()) {
    const out = await b.prepare({ config, ext: nodes[i]!.ext, log: tlog.log.with({ node: i }) });
    assert.equal(out, { attrs: { BackendType: "host-gw" }, mtu: 1500 });
  }
});
s.after(() => {
  destroyAll(u, nodes);
  if (process.env.KEEP_LOG) console.log(tlog.lines().join("\n"));
  tlog.remove();
});

const others = (i: number) => leases.filter((_, j) => j !== i);
const reconcileAll = async () => {
  for (const [i, b] of backends.entries()) await b.reconcile(leases[i]!, others(i));
};
const ours = (i: number) => ipLines(nodes[i]!.node, ["route", "show"]).filter((l) => l.includes("proto 87"));

s("each node routes the others' subnets via their public IPs; pods reach pods", async () => {
  await reconcileAll();
  assert.equal(ours(0), [
    "10.244.2.0/24 via 192.168.77.2 dev eth0 proto 87",
    "10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87",
  ]);
  assert.equal(ours(1), [
    "10.244.1.0/24 via 192.168.77.1 dev eth0 proto 87",
    "10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87",
  ]);
  tlog.fresh(); // what the first reconcile logged (device set-up)
  for (const a of nodes)
    for (const b of nodes) if (a !== b) assert.ok(pings(a.pod, b.podIp), `${a.podIp} -> ${b.podIp}`);
});

s("a second reconcile with the same leases changes nothing and says nothing", async () => {
  const before = nodes.map((_, i) => ipLines(nodes[i]!.node, ["route", "show", "table", "all"]));
  await reconcileAll();
  assert.equal(
    nodes.map((_, i) => ipLines(nodes[i]!.node, ["route", "show", "table", "all"])),
    before,
  );
  assert.equal(tlog.fresh(), []);
});

s("a route deleted by hand comes back on the next reconcile", async () => {
  nodes[0]!.node.netns.exec(["ip", "route", "del", "10.244.2.0/24"]);
  assert.not.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(ours(0).includes("10.244.2.0/24 via 192.168.77.2 dev eth0 proto 87"));
  assert.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
  assert.ok(tlog.fresh().some((l) => l.includes("Route recovered 10.244.2.0/24 : 192.168.77.2")));
});

s("a stale proto-87 route no lease backs goes; other routes into the network stay", async () => {
  const n = nodes[0]!.node.netns;
  n.exec(["ip", "route", "add", "10.244.9.0/24", "via", "192.168.77.9", "dev", "eth0", "proto", "87"]);
  n.exec(["ip", "route", "add", "10.244.8.0/24", "via", "192.168.77.8", "dev", "eth0"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  const all = ipLines(nodes[0]!.node, ["route", "show"]);
  assert.not.ok(all.some((l) => l.startsWith("10.244.9.0/24")));
  assert.ok(all.includes("10.244.8.0/24 via 192.168.77.8 dev eth0"));
  n.exec(["ip", "route", "del", "10.244.8.0/24"]);
  assert.ok(tlog.fresh().some((l) => l.includes("10.244.9.0/24")));
});

s("a route someone changed is replaced; a lease with another public IP moves its route", async () => {
  const n = nodes[0]!.node.netns;
  n.exec(["ip", "route", "replace", "10.244.3.0/24", "via", "192.168.77.2", "dev", "eth0", "proto", "87"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(ours(0).includes("10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87"));
  // A flanneld route (proto boot) to a leased subnet is taken over.
  n.exec(["ip", "route", "replace", "10.244.3.0/24", "via", "192.168.77.3", "dev", "eth0", "proto", "boot"]);
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(ours(0).includes("10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87"));
  tlog.fresh();
});

s("a lease gone takes its route; one of another backend type is ignored", async () => {
  const vx = leaseOf("10.244.5.0/24", "192.168.77.5", { type: "vxlan", mac: "aa:bb:cc:00:00:05" });
  await backends[0]!.reconcile(leases[0]!, [leases[1]!, vx]);
  assert.equal(ours(0), ["10.244.2.0/24 via 192.168.77.2 dev eth0 proto 87"]);
  assert.not.ok(pings(nodes[0]!.pod, nodes[2]!.podIp));
  await backends[0]!.reconcile(leases[0]!, others(0));
  assert.ok(pings(nodes[0]!.pod, nodes[2]!.podIp));
});

s("prepare refuses a public IP that is not on the interface (NAT), in flanneld's words", async () => {
  const b = new HostGwBackend({ netns: nodes[0]!.node.netns.path });
  const ext = { ...nodes[0]!.ext, publicIp: "203.0.113.5" };
  const err = await b.prepare({ config, ext, log: tlog.log }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match(
    (err as Error).message,
    "203.0.113.5 is not an address of eth0: your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend",
  );
});

s("reconcile before prepare is a programming error, said plainly", async () => {
  const b = new HostGwBackend({ netns: nodes[0]!.node.netns.path });
  await b.reconcile(leases[0]!, []).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, "prepare"),
  );
});

s.run();
