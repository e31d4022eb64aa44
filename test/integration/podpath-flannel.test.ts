/**
 * The kube-flannel conflist (flannel -> bridge -> host-local, then portmap) through libcni, with real
 * pods (netns), for each delegate set (reference Go plugins, and weft's once they implement ADD) and
 * the list at cniVersion 0.3.1 (as kube-flannel ships it) and 1.0.0.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { delegateSets, ipOf, type Pod, PodPath, reachable } from "../helpers/podpath.js";

type Doc = Record<string, unknown>;
interface AddResult {
  cniVersion: string;
  interfaces: Array<Record<string, unknown> & { name: string }>;
  ips: Array<Record<string, unknown> & { address: string }>;
  routes: Array<{ dst: string; gw?: string }>;
  dns: Doc;
}

function linkExists(name: string): boolean {
  try {
    execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function hostLink(name: string): { mtu: number; master?: string } {
  const out = execFileSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8" });
  return (JSON.parse(out) as Array<{ mtu: number; master?: string }>)[0]!;
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  broadcast?: string;
}

/** "10.1.2.3/24 brd 10.1.2.255": the reference's netlink.AddrAdd sets the broadcast of a v4 prefix < /31. */
const addrText = (a: AddrInfo) => `${a.local}/${a.prefixlen}${a.broadcast ? ` brd ${a.broadcast}` : ""}`;

function hostAddrs(dev: string): string[] {
  const out = execFileSync("ip", ["-j", "addr", "show", "dev", dev], { encoding: "utf8" });
  const links = JSON.parse(out) as Array<{ addr_info: AddrInfo[] }>;
  return links[0]!.addr_info.filter((a) => a.scope === "global").map(addrText);
}

/** "10.1.2.255" for "10.1.2.3/24". */
const broadcastOf = (cidr: string) => cidr.replace(/\.\d+\/24$/, ".255");

function podRoutes(pod: Pod, family: "-4" | "-6"): Array<{ dst: string; gateway?: string; dev: string }> {
  return pod.netns.ipJson([family, "route", "show"]);
}

const sets = await delegateSets();

for (const set of sets) {
  for (const version of ["0.3.1", "1.0.0"]) {
    const s = suite(`flannel list [${set} delegates] cniVersion ${version}`);
    let pp: PodPath;
    let a: Pod;
    let b: Pod;
    let ra: AddResult;
    let rb: AddResult;

    s.before(async () => {
      assertRoot();
      pp = await PodPath.create({ cniVersion: version, delegates: set });
    });
    s.after(() => pp?.cleanup());

    s("ADD gives the reference's result shape", () => {
      a = pp.pod();
      b = pp.pod();
      ra = pp.addOk(a) as unknown as AddResult;
      rb = pp.addOk(b) as unknown as AddResult;
      const { gateway, network, subnet } = pp.net;
      assert.equal(Object.keys(ra), ["cniVersion", "interfaces", "ips", "routes", "dns"]);
      assert.is(ra.cniVersion, version);
      assert.equal(
        ra.interfaces.map((i) => Object.keys(i)),
        [
          ["name", "mac"],
          ["name", "mac"],
          ["name", "mac", "sandbox"],
        ],
      );
      assert.is(ra.interfaces[0]!.name, pp.bridge);
      assert.match(ra.interfaces[1]!.name, /^veth[0-9a-f]{8}$/);
      assert.equal(ra.interfaces[2], { ...ra.interfaces[2], name: "eth0", sandbox: a.netns.path });
      assert.is(ra.ips.length, 1);
      const ip = ra.ips[0]!;
      assert.equal(
        Object.keys(ip),
        version === "0.3.1"
          ? ["version", "interface", "address", "gateway"]
          : ["interface", "address", "gateway"],
      );
      assert.is(ip.interface, 2);
      assert.is(ip.gateway, gateway);
      assert.match(
        ip.address,
        new RegExp(`^${subnet!.replace(/\.0\/24$/, "").replace(/\./g, "\\.")}\\.\\d+/24$`),
      );
      assert.equal(ra.routes, [{ dst: network! }, { dst: "0.0.0.0/0", gw: gateway! }]);
      assert.equal(ra.dns, {});
      assert.is.not(rb.ips[0]!.address, ip.address);
      assert.equal(pp.savedConfigs().sort(), [a.containerId, b.containerId].sort());
      assert.equal(pp.reservations().sort(), [ipOf(ra.ips[0]!.address), ipOf(rb.ips[0]!.address)].sort());
    });

    s("the bridge has the gateway and FLANNEL_MTU; the host veths are its ports, hairpin on", () => {
      assert.equal(hostAddrs(pp.bridge), [`${pp.net.gateway}/24 brd ${broadcastOf(`${pp.net.gateway}/24`)}`]);
      assert.is(hostLink(pp.bridge).mtu, pp.net.mtu);
      for (const r of [ra, rb]) {
        const veth = r.interfaces[1]!.name;
        assert.is(hostLink(veth).master, pp.bridge);
        assert.is(hostLink(veth).mtu, pp.net.mtu);
        assert.is(
          readFileSync(`/sys/class/net/${veth}/brport/hairpin_mode`, "utf8").trim(),
          "1",
          `hairpin on ${veth}`,
        );
      }
      assert.equal(pp.bridgePorts().sort(), [ra.interfaces[1]!.name, rb.interfaces[1]!.name].sort());
    });

    s("the pod has its address, the network route and the default route", () => {
      const links = a.netns.ipJson<Array<{ ifname: string; mtu: number; addr_info: AddrInfo[] }>>([
        "addr",
        "show",
        "dev",
        "eth0",
      ]);
      const v4 = links[0]!.addr_info.filter((x) => x.family === "inet").map(addrText);
      assert.equal(v4, [`${ra.ips[0]!.address} brd ${broadcastOf(ra.ips[0]!.address)}`]);
      assert.is(links[0]!.mtu, pp.net.mtu);
      const routes = podRoutes(a, "-4");
      assert.ok(
        routes.some((r) => r.dst === "default" && r.gateway === pp.net.gateway && r.dev === "eth0"),
        JSON.stringify(routes),
      );
      assert.ok(
        routes.some((r) => r.dst === pp.net.network && r.gateway === pp.net.gateway),
        JSON.stringify(routes),
      );
    });

    s("two pods reach each other and the gateway", () => {
      assert.ok(reachable(a, ipOf(rb.ips[0]!.address)), "a -> b");
      assert.ok(reachable(b, ipOf(ra.ips[0]!.address)), "b -> a");
      assert.ok(reachable(a, pp.net.gateway!), "a -> gateway");
      assert.ok(reachable(b, pp.net.gateway!), "b -> gateway");
    });

    if (version === "1.0.0") {
      s("CHECK passes on a healthy pod and fails on a broken one", () => {
        const ok = pp.check(a);
        assert.is(ok.status, 0, ok.stdout + ok.stderr);
        a.netns.exec(["ip", "route", "del", pp.net.network!]);
        const broken = pp.check(a);
        assert.is(broken.status, 1, "CHECK must notice the missing network route");
        assert.type(broken.json?.msg, "string");
        a.netns.exec(["ip", "route", "add", pp.net.network!, "via", pp.net.gateway!, "dev", "eth0"]);
        assert.is(pp.check(a).status, 0);
      });
    } else {
      s("CHECK is not legal at 0.3.1 (libcni refuses it)", () => {
        const r = pp.check(a);
        assert.is(r.status, 1);
        assert.match(r.stderr, 'configuration version "0.3.1" does not support the CHECK command');
      });
    }

    s("DEL removes the veth, the reservation and the saved file; DEL twice succeeds", () => {
      const veth = ra.interfaces[1]!.name;
      const del = pp.del(a);
      assert.is(del.status, 0, del.stdout + del.stderr);
      assert.not.ok(linkExists(veth), `${veth} still exists`);
      assert.equal(
        a.netns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
        ["lo"],
      );
      assert.not.ok(pp.reservations().includes(ipOf(ra.ips[0]!.address)));
      assert.not.ok(pp.savedConfigs().includes(a.containerId));
      assert.ok(existsSync(a.netns.path), "the pod itself is the runtime's");
      const again = pp.del(a);
      assert.is(again.status, 0, again.stdout + again.stderr);
      assert.ok(reachable(b, pp.net.gateway!), "the other pod is untouched");
    });

    s("DEL after the netns was deleted succeeds and releases everything", () => {
      b.netns.delete();
      const del = pp.del(b);
      assert.is(del.status, 0, del.stdout + del.stderr);
      assert.equal(pp.reservations(), []);
      assert.equal(pp.savedConfigs(), []);
      assert.equal(pp.bridgePorts(), []);
    });

    s.run();
  }

  const ds = suite(`flannel list [${set} delegates] dual-stack`);
  let dp: PodPath;
  ds.before(async () => {
    assertRoot();
    dp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, dualStack: true });
  });
  ds.after(() => dp?.cleanup());

  ds("each pod gets one address per family, both networks routed, pods reach each other over both", () => {
    const a = dp.pod();
    const b = dp.pod();
    const ra = dp.addOk(a) as unknown as AddResult;
    const rb = dp.addOk(b) as unknown as AddResult;
    for (const r of [ra, rb]) {
      assert.is(r.ips.length, 2);
      assert.ok(!r.ips[0]!.address.includes(":") && r.ips[1]!.address.includes(":"), JSON.stringify(r.ips));
      assert.equal(
        r.ips.map((i) => i.gateway),
        [dp.net.gateway, dp.net.ipv6Gateway],
      );
    }
    assert.equal(ra.routes, [
      { dst: dp.net.network! },
      { dst: dp.net.ipv6Network! },
      { dst: "0.0.0.0/0", gw: dp.net.gateway! },
      { dst: "::/0", gw: dp.net.ipv6Gateway! },
    ]);
    // A broadcast address for the v4 one only (netlink sets none for IPv6).
    assert.equal(
      hostAddrs(dp.bridge).sort(),
      [`${dp.net.gateway}/24 brd ${broadcastOf(`${dp.net.gateway}/24`)}`, `${dp.net.ipv6Gateway}/64`].sort(),
    );
    const v6routes = podRoutes(a, "-6");
    assert.ok(
      v6routes.some((r) => r.dst === dp.net.ipv6Network && r.gateway === dp.net.ipv6Gateway),
      JSON.stringify(v6routes),
    );
    assert.ok(reachable(a, ipOf(rb.ips[0]!.address)), "v4 a -> b");
    assert.ok(reachable(a, ipOf(rb.ips[1]!.address)), "v6 a -> b");
    assert.ok(reachable(b, dp.net.ipv6Gateway!), "v6 b -> gateway");
    assert.is(dp.check(a).status, 0, "CHECK passes with both families");
    assert.is(dp.reservations().length, 4);
    for (const p of [a, b]) assert.is(dp.del(p).status, 0);
    assert.equal(dp.reservations(), []);
    assert.equal(dp.savedConfigs(), []);
  });

  ds.run();
}
