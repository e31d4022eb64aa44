/**
 * The end-to-end suites of issue 9, written once and run per store: three nodes in network namespaces
 * on one underlay, the packaged `weftd` in each with the real backend, pods added through the libcni
 * client with the kube-flannel list reading each node's subnet.env (test/helpers/cluster.ts).
 *
 * - clusterSuite(backend, store): every pod pings every pod on the other nodes; flannel's shapes
 *   (`ip -d link`, `route -n`, `ip route`, `ip neigh`, `bridge fdb`, `ip addr`, subnet.env, the lease
 *   values, the iptables chains); a restart keeps the subnet and traffic flows during and after; a route
 *   and the vxlan device deleted by hand come back within the resync with the same MAC; a lease deleted
 *   by hand comes back with the same subnet; a joining node is routed to in under a second.
 * - faultSuite(store): lease exhaustion on a /28 of /30s with two daemons racing for the last subnet,
 *   and a running node restarted with an invalid net-conf.
 *
 * The file-store runs are e2e-cluster.test.ts and e2e-faults.test.ts. An etcd run passes a function of
 * the underlay that starts etcd where the node namespaces reach it (e.g. in `underlay.hub` on
 * `<subnet24>.254`) and returns { kind: "etcd", endpoints, prefix, TLS files, leases, close }.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ROUTE_RESYNC_MS } from "../../daemon/daemon.js";
import { FileLock } from "../../shared/ipam/flock.js";
import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  type ClusterPod,
  type ClusterStoreOption,
  firstReply,
  pingDuring,
} from "../helpers/cluster.js";
import { until } from "../helpers/weftd.js";

export type BackendType = "vxlan" | "host-gw";

const NETWORK = "10.244.0.0/16";

/** "10.244.3.0/24" -> "10.244.3." */
const base = (subnet: string) => subnet.replace(/\d+\/\d+$/, "");
const net0 = (subnet: string) => subnet.split("/")[0]!;
const keyOf = (subnet: string) => subnet.replace("/", "-");

interface LinkJson {
  address: string;
  mtu: number;
  flags: string[];
}

async function vtepMac(n: ClusterNode): Promise<string | undefined> {
  try {
    return (await n.ipJson<LinkJson[]>(["link", "show", "flannel.1"]))[0]?.address;
  } catch {
    return undefined;
  }
}

/** Lines of `route -n` (net-tools, as in the seed) for destinations inside the pod network. */
async function routeN(n: ClusterNode): Promise<string[]> {
  return (await n.exec(["route", "-n"]))
    .split("\n")
    .filter((l) => l.startsWith("10.244."))
    .map((l) => l.trim().split(/\s+/).join(" "))
    .sort();
}

const sorted = (xs: string[]) => [...xs].sort();

/** `pingDuring` from each pair's first pod to the second's, stopped and summed by `stop()`. */
function trafficBetween(pairs: Array<[ClusterPod, ClusterPod]>) {
  const pings = pairs.map(([a, b]) => ({ what: `${a.label} -> ${b.label}`, p: pingDuring(a, b.ip) }));
  return {
    async stop() {
      return Promise.all(pings.map(async ({ what, p }) => ({ what, ...(await p.stop()) })));
    },
  };
}

export function clusterSuite(backend: BackendType, store: ClusterStoreOption): void {
  const vxlan = backend === "vxlan";
  const mtu = vxlan ? 1450 : 1500;
  const s = suite<{ c: Cluster }>(`e2e ${backend} (${"three nodes"})`, {} as { c: Cluster });

  s.before(async (ctx) => {
    ctx.c = await Cluster.create({
      nodes: 3,
      netConf: { Network: NETWORK, Backend: { Type: backend } },
      store,
      // No periodic route check within a test's reach: repairs must come from kernel events.
      env: { WEFT_ROUTE_RESYNC_SECONDS: "600" },
    });
    await ctx.c.startAll();
    for (const n of ctx.c.nodes) {
      await n.addPod();
      await n.addPod();
    }
  });
  s.after(async (ctx) => {
    await ctx.c?.cleanup();
  });

  s("three nodes on one store: distinct subnets, flanneld's subnet.env and lease values", async ({ c }) => {
    const subnets = c.nodes.map((n) => n.subnet());
    assert.is(new Set(subnets).size, 3, `distinct: ${subnets.join(" ")}`);
    for (const n of c.nodes) {
      assert.is(
        n.subnetEnvText(),
        `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=${base(n.subnet())}1/24\nFLANNEL_MTU=${mtu}\nFLANNEL_IPMASQ=true\n`,
      );
    }
    const leases = await c.leases();
    assert.equal(leases.map((l) => l.key).sort(), subnets.map(keyOf).sort());
    for (const n of c.nodes) {
      const l = leases.find((x) => x.key === keyOf(n.subnet()))!;
      const want: Record<string, unknown> = { PublicIP: n.ip, PublicIPv6: null, BackendType: backend };
      if (vxlan) want.BackendData = { VNI: 1, VtepMAC: await vtepMac(n) };
      const { Expiration: _e, ...value } = l.value;
      assert.equal(value, want, `${n.name}'s lease`);
      // flanneld's order of members: the value is read by flanneld nodes too.
      assert.equal(Object.keys(value), Object.keys(want));
    }
    for (const n of c.nodes)
      for (const o of c.nodes.filter((x) => x !== n))
        assert.ok(n.logged(`Subnet added: ${o.subnet()} via ${o.ip}`), `${n.name} logged ${o.name}`);
  });

  s("every pod pings every pod on the other nodes", async ({ c }) => {
    assert.is(c.pods().length, 6);
    assert.equal(await c.unreachablePairs(), []);
  });

  s(
    "flannel's shapes: ip -d link, ip addr, route -n, ip route, ip neigh, bridge fdb, iptables",
    async ({ c }) => {
      for (const n of c.nodes) {
        const others = c.nodes.filter((o) => o !== n);
        const own = n.subnet();
        const cni0 = (await n.ipLines(["-4", "addr", "show", "dev", "cni0"])).join("\n");
        assert.match(cni0, `cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu ${mtu} `);
        assert.match(cni0, `inet ${base(own)}1/24 brd ${base(own)}255 scope global cni0`);
        if (vxlan) {
          const macs = await Promise.all(others.map(vtepMac));
          const link = (await n.ipLines(["-d", "link", "show", "flannel.1"])).join(" ");
          assert.match(link, /flannel\.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*state UNKNOWN/);
          assert.match(link, `link/ether ${await vtepMac(n)} brd ff:ff:ff:ff:ff:ff`);
          assert.match(link, `vxlan id 1 local ${n.ip} dev eth0 srcport 0 0 dstport 8472 nolearning`);
          // flanneld (netlink >= 1.2) adds the /32 without a broadcast address.
          assert.equal(
            (await n.ipLines(["-4", "addr", "show", "dev", "flannel.1"])).filter((l) => l.startsWith("inet")),
            [`inet ${net0(own)}/32 scope global flannel.1`],
          );
          assert.equal(
            await routeN(n),
            [
              ...others.map(
                (o) => `${net0(o.subnet())} ${net0(o.subnet())} 255.255.255.0 UG 0 0 0 flannel.1`,
              ),
              `${net0(own)} 0.0.0.0 255.255.255.0 U 0 0 0 cni0`,
            ].sort(),
          );
          assert.equal(
            (await n.ipLines(["route", "show", "proto", "87"])).sort(),
            others.map((o) => `${o.subnet()} via ${net0(o.subnet())} dev flannel.1 onlink`).sort(),
          );
          assert.equal(
            sorted(await n.ipLines(["neigh", "show", "dev", "flannel.1"])),
            sorted(others.map((o, i) => `${net0(o.subnet())} lladdr ${macs[i]} PERMANENT`)),
          );
          assert.equal(
            sorted(await n.ipLines(["-4", "route", "show", "dev", "flannel.1"])),
            sorted(others.map((o) => `${o.subnet()} via ${net0(o.subnet())} proto 87 onlink`)),
          );
          const fdb = (await n.exec(["bridge", "fdb", "show", "dev", "flannel.1"])).trim().split("\n");
          assert.equal(sorted(fdb), sorted(others.map((o, i) => `${macs[i]} dst ${o.ip} self permanent`)));
        } else {
          assert.not.ok(await vtepMac(n), "no flannel.1 with host-gw");
          assert.equal(
            await routeN(n),
            [
              ...others.map((o) => `${net0(o.subnet())} ${o.ip} 255.255.255.0 UG 0 0 0 eth0`),
              `${net0(own)} 0.0.0.0 255.255.255.0 U 0 0 0 cni0`,
            ].sort(),
          );
          assert.equal(
            sorted(await n.ipLines(["route", "show", "proto", "87"])),
            sorted(others.map((o) => `${o.subnet()} via ${o.ip} dev eth0`)),
          );
        }
        // --ip-masq: flanneld's FLANNEL-POSTRTG, and FLANNEL-FWD, rule for rule (random-fully when the
        // iptables here has it, as flanneld decides).
        const nat = (await n.exec(["iptables-save", "-t", "nat"])).split("\n");
        const rf = nat.some((l) => l.includes("--random-fully")) ? " --random-fully" : "";
        const masq = '-m comment --comment "flanneld masq"';
        assert.equal(
          nat.filter((l) => l.includes("FLANNEL-POSTRTG") && l.startsWith("-A")),
          [
            `-A POSTROUTING ${masq} -j FLANNEL-POSTRTG`,
            `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${own} -d ${NETWORK} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${NETWORK} -d ${own} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG ! -s ${NETWORK} -d ${own} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${NETWORK} ! -d 224.0.0.0/4 ${masq} -j MASQUERADE${rf}`,
            `-A FLANNEL-POSTRTG ! -s ${NETWORK} -d ${NETWORK} ${masq} -j MASQUERADE${rf}`,
          ],
        );
        const fwd = '-m comment --comment "flanneld forward"';
        assert.equal(
          (await n.exec(["iptables-save", "-t", "filter"]))
            .split("\n")
            .filter((l) => l.includes("FLANNEL-FWD") && l.startsWith("-A")),
          [
            `-A FORWARD ${fwd} -j FLANNEL-FWD`,
            `-A FLANNEL-FWD -s ${NETWORK} ${fwd} -j ACCEPT`,
            `-A FLANNEL-FWD -d ${NETWORK} ${fwd} -j ACCEPT`,
          ],
        );
      }
    },
  );

  s(
    "a restart (SIGTERM, and SIGKILL) keeps the node's subnet; the pods talk during and after",
    async ({ c }) => {
      const [a, b, d] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
      const before = await Promise.all(
        [b, d].map(async (n) => ({ subnet: n.subnet(), mac: await vtepMac(n) })),
      );
      const traffic = trafficBetween([
        [a.pods[0]!, b.pods[0]!],
        [b.pods[1]!, a.pods[1]!],
        [a.pods[0]!, d.pods[0]!],
        [d.pods[1]!, b.pods[0]!],
      ]);
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all([b.restart("SIGTERM"), d.restart("SIGKILL")]);
      assert.is(b.runs.at(-2)!.code, 0, "SIGTERM ends weftd with status 0");
      await new Promise((r) => setTimeout(r, 300));
      const counts = await traffic.stop();
      for (const [i, n] of [b, d].entries()) {
        assert.is(n.subnet(), before[i]!.subnet, `${n.name} kept its subnet`);
        assert.is(await vtepMac(n), before[i]!.mac, `${n.name} kept its VTEP MAC`);
        assert.match(
          n.log(),
          `Found lease (ip: ${before[i]!.subnet} ipv6: none) for current IP (${n.ip}), reusing`,
        );
      }
      // SIGINT may end a ping between an echo and its reply: at most that one is missing.
      for (const t of counts)
        assert.ok(t.sent > 10 && t.received >= t.sent - 1, `${t.what}: ${JSON.stringify(t)}`);
      assert.equal(await c.unreachablePairs(), []);
    },
  );

  s(
    "a route deleted by hand comes back at once, from kernel events (no periodic check in reach)" +
      (vxlan ? "; so does flannel.1, with its MAC" : ""),
    async ({ c }) => {
      const [a, b, d] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
      const lost = b.subnet();
      const mac = await vtepMac(d);
      const t0 = Date.now();
      await a.exec(["ip", "route", "del", lost]);
      if (vxlan) await d.exec(["ip", "link", "del", "flannel.1"]);
      assert.equal(await a.ipLines(["route", "show", lost]), [], "the route is gone");
      const wantA = vxlan
        ? `${lost} via ${net0(lost)} dev flannel.1 proto 87 onlink`
        : `${lost} via ${b.ip} dev eth0 proto 87`;
      // The periodic check is 10 min away here: only the kernel monitor can bring it back in time.
      const bound = ROUTE_RESYNC_MS;
      await until(
        "the route back",
        async () => (await a.ipLines(["route", "show", lost])).includes(wantA),
        bound,
      );
      if (vxlan) {
        const others = c.nodes.filter((o) => o !== d);
        await until(
          "flannel.1 back with its address, neighbours, fdb entries and routes",
          async () =>
            (await vtepMac(d)) === mac &&
            (await d.ipLines(["-4", "addr", "show", "dev", "flannel.1"])).some((l) =>
              l.startsWith(`inet ${net0(d.subnet())}/32`),
            ) &&
            (await d.ipLines(["neigh", "show", "dev", "flannel.1"])).length === others.length &&
            (await d.exec(["bridge", "fdb", "show", "dev", "flannel.1"])).trim().split("\n").length ===
              others.length &&
            (await d.ipLines(["route", "show", "dev", "flannel.1"])).length === others.length,
          bound,
        );
        assert.match(
          d.log(),
          `flannel.1 is missing; recreating it with MAC ${mac} and replaying every lease`,
        );
      }
      const ms = Date.now() - t0;
      console.log(
        `  (${backend}: repaired ${ms} ms after the deletion; the resync period is ${ROUTE_RESYNC_MS} ms)`,
      );
      assert.ok(ms < bound, `back in ${ms} ms`);
      assert.equal(await c.unreachablePairs(), []);
    },
  );

  s("a lease deleted by hand is re-acquired with the same subnet; the pods keep talking", async ({ c }) => {
    const [a, b] = c.nodes as [ClusterNode, ClusterNode];
    const lease = (await b.lease())!;
    const env = b.subnetEnvText();
    const traffic = trafficBetween([
      [a.pods[0]!, b.pods[0]!],
      [b.pods[1]!, a.pods[1]!],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    await c.leaseAccess.remove(lease.key);
    await until("the loss logged", () => b.logged(`Lease for ${b.subnet()} lost: it is gone from the store`));
    await until("the lease back", async () => (await b.lease())?.key === lease.key);
    await b.ready();
    assert.match(b.log(), `Lease for ${b.subnet()} re-acquired: the subnet is unchanged`);
    const { Expiration: _a, ...was } = lease.value;
    const { Expiration: _b, ...now } = (await b.lease())!.value;
    assert.equal(now, was, "the same value (VTEP MAC included)");
    assert.is(b.subnetEnvText(), env, "subnet.env unchanged");
    await new Promise((r) => setTimeout(r, 300));
    const counts = await traffic.stop();
    console.log(
      `  (lease deleted by hand: ${counts.map((t) => `${t.what} ${t.received}/${t.sent}`).join(", ")})`,
    );
    for (const t of counts) assert.ok(t.received > 0, `${t.what}: ${JSON.stringify(t)}`);
    assert.equal(await c.unreachablePairs(), []);
  });

  s(
    "a joining node is routed to by the others in under a second (from its /readyz to a ping)",
    async ({ c }) => {
      const others = [...c.nodes];
      const j = c.addNode();
      j.start();
      await j.ready();
      // The moment it became ready is the moment it logged so (the /readyz poll sees it a little later).
      const readyAt = Date.parse(/^(\S+) info weftd "weftd is ready"$/m.exec(j.log())![1]!);
      // The first pod on the new node, then a pod on every other node pings it. (Pinging before the pod
      // exists would measure the kernel's ARP retry on the new cni0, a second, not the routes.)
      const pod = await j.addPod();
      const added = Date.now() - readyAt;
      const ms = await Promise.all(
        others.map(async (o) => {
          await firstReply(o.pods[0]!, pod.ip, 10, 5000);
          return Date.now() - readyAt;
        }),
      );
      console.log(
        `  (${backend}: the joiner's first pod was added ${added} ms after its /readyz; a pod on each other node got a reply at ${ms.join(", ")} ms)`,
      );
      for (const x of ms) assert.ok(x < 1000, `routed in ${x} ms`);
      assert.equal(await c.unreachablePairs(), []);
    },
  );

  s.run();
}

const OUT_OF_SUBNETS =
  "failed to acquire lease: out of subnets: all 3 /30 subnets in 10.9.0.4/30 .. 10.9.0.12/30 are leased (3 used, 0 free; 3 leases in the store)";

export function faultSuite(store: ClusterStoreOption): void {
  const s = suite("e2e faults");
  const clusters: Cluster[] = [];
  const cluster = async (o: Omit<ClusterOptions, "store">) => {
    const c = await Cluster.create({ ...o, store });
    clusters.push(c);
    return c;
  };
  s.after.each(async () => {
    for (const c of clusters.splice(0)) await c.cleanup();
  });

  s(
    "lease exhaustion (a /28 of /30s): two daemons race for the last subnet, one wins; the loser and a fifth node wait with the counts and take a subnet when one frees",
    async () => {
      const c = await cluster({
        nodes: 5,
        netConf: { Network: "10.9.0.0/28", SubnetLen: 30, Backend: { Type: "host-gw" } },
      });
      const [a, b, x, y, late] = c.nodes as [ClusterNode, ClusterNode, ClusterNode, ClusterNode, ClusterNode];
      await c.startAll([a, b]);
      const taken = (await c.leases()).map((l) => l.key);
      const last = ["10.9.0.4-30", "10.9.0.8-30", "10.9.0.12-30"].find((k) => !taken.includes(k))!;
      // Two daemons started at the same instant for the last free subnet. On the file store the race is
      // made certain: the subnet still holds the expired lease of a node gone for good, which a creation
      // reclaims under the store's lock (flock on <dir>/.lock); the test holds that lock until both
      // daemons have picked the subnet and wait for it, so both are inside the arbiter at once.
      const lock = c.storeKind === "file" ? new FileLock(join(c.storeDir, ".lock")) : undefined;
      if (lock) {
        await lock.lock();
        writeFileSync(
          join(c.storeDir, last),
          '{"PublicIP":"192.168.77.200","PublicIPv6":null,"BackendType":"host-gw","Expiration":"2020-01-01T00:00:00.000Z"}',
        );
      }
      // On etcd, the transaction that creates the key is the arbiter: both daemons reach etcd through a
      // door that holds each of their requests a second, so both have read the store (and picked the
      // subnet) before either's creation (a lease grant, then the transaction) arrives.
      const door = c.storeKind === "etcd" ? await c.etcdDoor(1000) : undefined;
      const picking = "Picking subnet in range 10.9.0.4 ... 10.9.0.12";
      const picks = (n: ClusterNode) => n.log().split(picking).length - 1;
      try {
        x.start(door ? { args: door.args } : {});
        y.start(door ? { args: door.args } : {});
        if (lock) {
          await until("both daemons picked the last subnet", () => picks(x) === 1 && picks(y) === 1);
          await new Promise((r) => setTimeout(r, 300));
        }
      } finally {
        lock?.unlock();
      }
      const [winner, loser] = await until(
        "one of the two ready and the other out of subnets",
        async () => {
          const ready = await Promise.all([x, y].map(async (n) => (await n.readyz()).status === 200));
          if (ready[0] === ready[1]) return undefined;
          const [w, l] = ready[0] ? [x, y] : [y, x];
          return l.logged(OUT_OF_SUBNETS) ? ([w, l] as const) : undefined;
        },
        20_000,
      );
      const leases = await c.leases();
      assert.equal(
        leases.map((l) => l.key),
        ["10.9.0.12-30", "10.9.0.4-30", "10.9.0.8-30"],
      );
      assert.equal(
        leases.map((l) => l.value.PublicIP).sort(),
        [a.ip, b.ip, winner.ip].sort(),
        "the winner holds the last subnet",
      );
      door?.setDelay(0);
      // The loser's creation failed, it looked at the store again and found it full (flanneld exits here:
      // its retry tests the wrong error, anchors 10.2).
      assert.is(
        loser.log().split(OUT_OF_SUBNETS)[0]!.split(picking).length - 1,
        2,
        "the loser lost the creation and picked again",
      );
      assert.match(
        (await loser.readyz()).body,
        `weftd is not ready: not ready yet: acquiring a lease; ${OUT_OF_SUBNETS}`,
      );
      assert.is(loser.subnetEnvText(), undefined, "no subnet.env without a lease");
      assert.ok(loser.running, "the loser keeps trying");
      // A fifth node waits the same way.
      late.start();
      await until("the fifth node's message", () => late.logged(OUT_OF_SUBNETS));
      assert.is((await late.readyz()).status, 503);

      for (const n of [a, b, winner]) await n.addPod();
      assert.equal(await c.unreachablePairs(), []);

      // Node b leaves for good: its daemon stops and its lease is deleted.
      const freed = b.subnet();
      await b.stop();
      await c.leaseAccess.remove(keyOf(freed));
      const newcomer = await until(
        "a waiting node takes the freed subnet",
        async () => {
          for (const n of [loser, late]) if ((await n.readyz()).status === 200) return n;
          return undefined;
        },
        40_000,
      );
      const still = newcomer === loser ? late : loser;
      assert.is(newcomer.subnet(), freed);
      assert.match(
        newcomer.subnetEnvText()!,
        /^FLANNEL_NETWORK=10\.9\.0\.0\/28\nFLANNEL_SUBNET=10\.9\.0\.\d+\/30\n/,
      );
      assert.is((await still.readyz()).status, 503, "the other one still waits");
      assert.match((await still.readyz()).body, "out of subnets");
      // The others route to it, it routes to them, and pods talk.
      for (const n of [a, winner]) {
        await until(`${n.name} routes to the newcomer`, async () =>
          (await n.ipLines(["route", "show", "proto", "87"])).includes(
            `${freed} via ${newcomer.ip} dev eth0`,
          ),
        );
      }
      assert.equal(
        sorted(await newcomer.ipLines(["route", "show", "proto", "87"])),
        sorted([a, winner].map((n) => `${n.subnet()} via ${n.ip} dev eth0`)),
      );
      await newcomer.addPod();
      assert.equal(await c.unreachablePairs([...a.pods, ...winner.pods, ...newcomer.pods]), []);
    },
  );

  s(
    "an invalid net-conf at a restart: exit 1 naming the key; subnet.env, the lease and the routes stay, the pods keep talking; fixed, the node starts on its subnet",
    async () => {
      const good = { Network: NETWORK, Backend: { Type: "vxlan" } };
      const c = await cluster({ nodes: 2, netConf: good });
      const [a, b] = c.nodes as [ClusterNode, ClusterNode];
      await c.startAll();
      for (const n of c.nodes) await n.addPod();
      const env = b.subnetEnvText();
      const lease = await b.lease();
      const routes = await b.ipLines(["route", "show", "proto", "87"]);
      await b.stop();
      const bad: Array<[Record<string, unknown>, string]> = [
        [
          { Network: NETWORK, SubnetLen: 31, Backend: { Type: "vxlan" } },
          "SubnetLen must be less than /31 (SubnetLen 31 with Network 10.244.0.0/16: allowed values: 18..30)",
        ],
        [
          { Network: NETWORK, Backend: { Type: "udp" } },
          'Backend.Type: unsupported value "udp"; allowed values: "vxlan", "host-gw"',
        ],
        [
          { Network: "10.244.0.0/29" },
          "network is too small. Minimum useful network prefix is /28 (Network is 10.244.0.0/29)",
        ],
      ];
      for (const [doc, msg] of bad) {
        const d = b.start({ netConf: doc });
        assert.is(await d.exited, 1, JSON.stringify(doc));
        assert.ok(b.logged(`Invalid network config in ${b.dir}/net-conf.json: ${msg}`), `${msg}\n${b.log()}`);
      }
      assert.is(b.subnetEnvText(), env, "subnet.env kept");
      assert.equal(await b.lease(), lease, "the lease kept");
      assert.equal(await b.ipLines(["route", "show", "proto", "87"]), routes, "the routes kept");
      assert.equal(await c.unreachablePairs(), [], "pods talk with no daemon on b");
      b.start({ netConf: good });
      await b.ready();
      assert.is(b.subnetEnvText(), env);
      assert.equal(await c.unreachablePairs([...a.pods, ...b.pods]), []);
    },
  );

  s.run();
}
