/**
 * Dual-stack leases (flanneld's EnableIPv6 with IPv6Network): the vxlan backend's second VTEP
 * `flannel-v6.<VNI>` (local <public IPv6>) with its /128 address, v6 neighbour, fdb entry and onlink
 * route per remote lease; host-gw's v6 route via the remote public IPv6. Pods reach pods over both
 * families.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Backend } from "../../daemon/backend/backend.js";
import { HostGwBackend } from "../../daemon/backend/host-gw.js";
import { VxlanBackend } from "../../daemon/backend/vxlan.js";
import { encodeLeaseAttrs, type Lease } from "../../daemon/lease.js";
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

const s = suite("backends, dual-stack");
let u: Underlay;
let nodes: PodNode[] = [];
const tlog = new TestLog();

s.before(async () => {
  assertRoot();
  u = Underlay.create(2, { subnet24: "192.168.79" });
  nodes = [];
  for (const [i, node] of u.nodes.entries()) {
    node.netns.exec(["ip", "addr", "add", `fd79::${i + 1}/64`, "dev", "eth0", "nodad"]);
    nodes.push(await podBehind(node, `10.244.${i + 1}.0/24`, `fd10:0:0:${i + 1}::/64`));
  }
});
s.after(() => {
  if (process.env.KEEP_LOG) console.log(tlog.lines().join("\n"));
  destroyAll(u, nodes);
  tlog.remove();
});

const dual = (type: "vxlan" | "host-gw") =>
  netConfig({ type }, { enableIPv6: true, ipv6Network: "fd10::/48", ipv6SubnetLen: 64 });

async function run(
  make: (n: PodNode) => Backend,
  type: "vxlan" | "host-gw",
): Promise<{ leases: Lease[]; backends: Backend[] }> {
  const backends = nodes.map(make);
  const leases: Lease[] = [];
  for (const [i, b] of backends.entries()) {
    const out = await b.prepare({ config: dual(type), ext: nodes[i]!.ext, log: tlog.log });
    leases.push({
      subnet: nodes[i]!.subnet,
      ipv6Subnet: nodes[i]!.ipv6Subnet!,
      attrs: { PublicIP: nodes[i]!.node.ip, PublicIPv6: nodes[i]!.ext.publicIpv6!, ...out.attrs },
    });
  }
  for (const [i, b] of backends.entries())
    await b.reconcile(
      leases[i]!,
      leases.filter((_, j) => j !== i),
    );
  return { leases, backends };
}

/**
 * One ping over IPv6, retried for up to 3 s: right after the backend ran, the v6 VTEP's address is still
 * in duplicate address detection (flanneld adds it the same way), and the first packets can be lost.
 */
const ping6 = (from: PodNode, to: PodNode) => {
  for (let i = 0; i < 3; i++) {
    try {
      from.pod.exec(["ping", "-6", "-c1", "-W1", to.podIpv6!]);
      return true;
    } catch {
      // again
    }
  }
  return false;
};

s(
  "vxlan: flannel-v6.1 next to flannel.1, v6 entries per remote lease; pods reach pods over both",
  async () => {
    const { leases } = await run((n) => new VxlanBackend({ netns: n.node.netns.path }), "vxlan");
    const data = leases[0]!.attrs.BackendV6Data as { VNI: number; VtepMAC: string };
    assert.equal(Object.keys(data), ["VNI", "VtepMAC"]);
    const mac2 = (leases[1]!.attrs.BackendV6Data as { VtepMAC: string }).VtepMAC;
    assert.match(encodeLeaseAttrs(leases[0]!.attrs), '"PublicIPv6":"fd79::1"');
    const a = nodes[0]!.node;
    assert.match(
      ipLines(a, ["-d", "link", "show", "flannel-v6.1"]).join(" "),
      "vxlan id 1 local fd79::1 dev eth0 srcport 0 0 dstport 8472 nolearning",
    );
    // Added as flanneld adds it (with duplicate address detection, so "tentative" for a moment).
    assert.ok(
      ipLines(a, ["-6", "addr", "show", "dev", "flannel-v6.1"]).some((l) =>
        l.startsWith("inet6 fd10:0:0:1::/128 scope global"),
      ),
    );
    assert.ok(
      ipLines(a, ["-6", "route", "show"]).includes(
        "fd10:0:0:2::/64 via fd10:0:0:2:: dev flannel-v6.1 proto 87 metric 1024 onlink pref medium",
      ),
    );
    assert.ok(
      ipLines(a, ["-6", "neigh", "show", "dev", "flannel-v6.1"]).includes(
        `fd10:0:0:2:: lladdr ${mac2} PERMANENT`,
      ),
    );
    assert.match(
      a.netns.exec(["bridge", "fdb", "show", "dev", "flannel-v6.1"]),
      `${mac2} dst fd79::2 self permanent`,
    );
    assert.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
    assert.ok(ping6(nodes[0]!, nodes[1]!));
    assert.ok(ping6(nodes[1]!, nodes[0]!));
    for (const n of nodes) n.node.netns.exec(["sh", "-c", "ip link del flannel.1; ip link del flannel-v6.1"]);
  },
);

s("host-gw: a v6 route via the remote public IPv6; pods reach pods over both", async () => {
  await run((n) => new HostGwBackend({ netns: n.node.netns.path }), "host-gw");
  const a = nodes[0]!.node;
  assert.ok(
    ipLines(a, ["-6", "route", "show"]).includes(
      "fd10:0:0:2::/64 via fd79::2 dev eth0 proto 87 metric 1024 pref medium",
    ),
  );
  assert.ok(ipLines(a, ["route", "show"]).includes("10.244.2.0/24 via 192.168.79.2 dev eth0 proto 87"));
  assert.ok(pings(nodes[0]!.pod, nodes[1]!.podIp));
  assert.ok(ping6(nodes[0]!, nodes[1]!));
});

s.run();
