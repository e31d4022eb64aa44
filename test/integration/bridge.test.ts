import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { BridgeHarness, hostJson, natRules, subnet, subnet6, withHarness } from "./bridge-harness.js";

/**
 * weft's bridge against real kernel objects: pods are network namespaces, the bridge and veths are real
 * links, traffic is sent through them, and the masquerade rules are read back from iptables-save.
 */

assertRoot();
const FILE = 0;

const net = (n: number) => subnet(FILE, n);
const prefixOf = (cidr: string) => cidr.replace(/\.0\/24$/, "");

interface Iface {
  name: string;
  mac?: string;
  sandbox?: string;
}
interface IpEntry {
  version?: string;
  interface?: number;
  address: string;
  gateway?: string;
}
interface RouteEntry {
  dst: string;
  gw?: string;
}

function routesIn(
  pod: { ipJson: <T>(a: string[]) => T },
  family: 4 | 6 = 4,
): Array<{ dst: string; gateway?: string; dev?: string }> {
  return pod.ipJson([`-${family}`, "route", "show"]);
}

for (const cniVersion of ["0.3.1", "1.0.0"]) {
  test(`ADD ${cniVersion}: reference result shape, bridge, port and pod configured`, () => {
    const sn = net(cniVersion === "0.3.1" ? 1 : 2);
    const h2 = new BridgeHarness();
    try {
      const conf = h2.conf({
        cniVersion,
        subnets: [sn],
        routes: [{ dst: `${prefixOf(sn).replace(/\.\d+$/, "")}.0.0/16` }],
      });
      const pod = h2.pod();
      const r = h2.weft("ADD", { netns: pod.path, containerId: "ctr-a", ifname: "eth0" }, conf);
      assert.is(r.status, 0, r.stdout + r.stderr);
      const res = r.json!;
      assert.is(res.cniVersion, cniVersion);
      const ifs = res.interfaces as Iface[];
      assert.is(ifs.length, 3);
      assert.is(ifs[0]!.name, h2.bridge);
      assert.ok(/^veth[0-9a-f]{8}$/.test(ifs[1]!.name), ifs[1]!.name);
      assert.is(ifs[2]!.name, "eth0");
      assert.is(ifs[2]!.sandbox, pod.path);
      for (const i of ifs) assert.is(i.mac?.length, 17, JSON.stringify(i));
      assert.is(ifs[1]!.sandbox, undefined);
      const ips = res.ips as IpEntry[];
      assert.is(ips.length, 1);
      assert.is(ips[0]!.interface, 2);
      assert.is(ips[0]!.address, `${prefixOf(sn)}.2/24`);
      assert.is(ips[0]!.gateway, `${prefixOf(sn)}.1`);
      if (cniVersion === "0.3.1") assert.is(ips[0]!.version, "4");
      else assert.not.ok("version" in ips[0]!);
      const routes = res.routes as RouteEntry[];
      assert.ok(routes.some((x) => x.dst === "0.0.0.0/0" && x.gw === `${prefixOf(sn)}.1`));

      // The bridge: gateway address, MTU, up, MAC as reported.
      const br = hostJson<
        Array<{
          mtu: number;
          address: string;
          addr_info: Array<{ local: string; prefixlen: number; family: string }>;
        }>
      >(["addr", "show", "dev", h2.bridge])[0]!;
      assert.is(br.mtu, 1450);
      assert.ok(
        br.addr_info.some(
          (a) => a.family === "inet" && a.local === `${prefixOf(sn)}.1` && a.prefixlen === 24,
        ),
      );
      assert.is(br.address, ifs[0]!.mac);
      // The host veth: on the bridge, hairpin on, MTU, MAC as reported.
      const veth = ifs[1]!.name;
      assert.is(readFileSync(`/sys/class/net/${veth}/brport/hairpin_mode`, "utf8").trim(), "1");
      assert.is(readFileSync(`/sys/class/net/${veth}/mtu`, "utf8").trim(), "1450");
      assert.is(readFileSync(`/sys/class/net/${veth}/address`, "utf8").trim(), ifs[1]!.mac);
      assert.is(readFileSync(`/sys/class/net/${veth}/operstate`, "utf8").trim(), "up");
      assert.equal(h2.ports(), [veth]);
      // The pod: address, MAC, network route, default route, sysctls.
      const eth0 = pod.ipJson<
        Array<{ address: string; mtu: number; addr_info: Array<{ local: string; family: string }> }>
      >(["addr", "show", "dev", "eth0"])[0]!;
      assert.is(eth0.address, ifs[2]!.mac);
      assert.is(eth0.mtu, 1450);
      assert.ok(eth0.addr_info.some((a) => a.family === "inet" && a.local === `${prefixOf(sn)}.2`));
      const pr = routesIn(pod);
      assert.ok(
        pr.some((x) => x.dst === "default" && x.gateway === `${prefixOf(sn)}.1`),
        JSON.stringify(pr),
      );
      assert.ok(
        pr.some((x) => x.dst === sn && x.dev === "eth0"),
        JSON.stringify(pr),
      );
      assert.is(pod.exec(["cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify"]).trim(), "1");
      assert.is(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(), "1");
      // DEL: veth and reservation gone, the bridge stays.
      assert.equal(h2.reservations(), [`${prefixOf(sn)}.2`]);
      const d = h2.weft("DEL", { netns: pod.path, containerId: "ctr-a", ifname: "eth0" }, conf);
      assert.is(d.status, 0, d.stdout + d.stderr);
      assert.equal(h2.ports(), []);
      assert.equal(h2.reservations(), []);
      assert.equal(
        pod.ipJson<Array<{ ifname: string }>>(["link", "show"]).map((l) => l.ifname),
        ["lo"],
      );
    } finally {
      h2.cleanup();
    }
  });
}

test(
  "two pods reach each other and the gateway; CHECK passes, then fails on a broken pod",
  withHarness((h) => {
    const sn = net(3);
    const conf = h.conf({ cniVersion: "1.0.0", subnets: [sn] });
    const a = h.pod();
    const b = h.pod();
    const ra = h.weft("ADD", { netns: a.path, containerId: "ping-a", ifname: "eth0" }, conf);
    const rb = h.weft("ADD", { netns: b.path, containerId: "ping-b", ifname: "eth0" }, conf);
    assert.is(ra.status, 0, ra.stdout + ra.stderr);
    assert.is(rb.status, 0, rb.stdout + rb.stderr);
    const ipB = (rb.json!.ips as IpEntry[])[0]!.address.split("/")[0]!;
    const ipA = (ra.json!.ips as IpEntry[])[0]!.address.split("/")[0]!;
    a.exec(["ping", "-c", "1", "-W", "2", ipB]);
    b.exec(["ping", "-c", "1", "-W", "2", ipA]);
    a.exec(["ping", "-c", "1", "-W", "2", `${prefixOf(sn)}.1`]);
    // Hairpin: the pod's own address through the bridge is its own, so ping the gateway from the host too.
    execFileSync("ping", ["-c", "1", "-W", "2", ipA]);

    const checkConf = { ...conf, prevResult: ra.json };
    const ok = h.weft("CHECK", { netns: a.path, containerId: "ping-a", ifname: "eth0" }, checkConf);
    assert.is(ok.status, 0, ok.stdout + ok.stderr);

    a.exec(["ip", "route", "del", "default"]);
    const broken = h.weft("CHECK", { netns: a.path, containerId: "ping-a", ifname: "eth0" }, checkConf);
    assert.is(broken.status, 1);
    assert.match(String(broken.json?.msg), /Expected Route .*0\.0\.0\.0\/0.* not found in routing table/);

    a.exec(["ip", "addr", "flush", "dev", "eth0"]);
    const noAddr = h.weft("CHECK", { netns: a.path, containerId: "ping-a", ifname: "eth0" }, checkConf);
    assert.is(noAddr.status, 1);
    assert.match(String(noAddr.json?.msg), `Failed to match addr ${ipA}/24 on interface eth0`);

    for (const [pod, id] of [
      [a, "ping-a"],
      [b, "ping-b"],
    ] as const) {
      const d = h.weft("DEL", { netns: pod.path, containerId: id, ifname: "eth0" }, conf);
      assert.is(d.status, 0, d.stdout + d.stderr);
    }
    assert.equal(h.ports(), []);
    assert.equal(h.reservations(), []);
  }),
);

test(
  "DEL twice, and DEL after the pod's namespace is gone, succeed and release the address",
  withHarness((h) => {
    const sn = net(4);
    const conf = h.conf({ subnets: [sn], extra: { ipMasq: true } });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "gone-1", ifname: "eth0" };
    assert.is(h.weft("ADD", call, conf).status, 0);
    assert.is(h.reservations().length, 1);
    pod.delete();
    const d1 = h.weft("DEL", call, conf);
    assert.is(d1.status, 0, d1.stdout + d1.stderr);
    assert.equal(h.reservations(), []);
    assert.equal(h.ports(), []);
    assert.not.match(natRules(), /id: \\"gone-1\\"/);
    const d2 = h.weft("DEL", call, conf);
    assert.is(d2.status, 0, d2.stdout + d2.stderr);
    // And with no CNI_NETNS at all (the runtime lost it).
    const d3 = h.weft("DEL", { containerId: "gone-1", ifname: "eth0" }, conf);
    assert.is(d3.status, 0, d3.stdout + d3.stderr);
  }),
);

test(
  "ipMasq: the reference's chain, comment and rules; removed on DEL",
  withHarness((h) => {
    const sn = net(5);
    const conf = h.conf({ subnets: [sn], extra: { ipMasq: true } });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "masq-1", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const chain = `CNI-${createHash("sha512").update(`${h.name}masq-1`).digest("hex").slice(0, 24)}`;
    const comment = `"name: \\"${h.name}\\" id: \\"masq-1\\""`;
    const saved = natRules();
    const mine = saved.split("\n").filter((l) => l.includes(chain));
    assert.equal(
      mine.sort(),
      [
        `-A ${chain} ! -d 224.0.0.0/4 -m comment --comment ${comment} -j MASQUERADE`,
        `-A ${chain} -d ${sn} -m comment --comment ${comment} -j ACCEPT`,
        `-A POSTROUTING -s ${prefixOf(sn)}.2/32 -m comment --comment ${comment} -j ${chain}`,
        `:${chain} - [0:0]`,
      ].sort(),
    );
    const d = h.weft("DEL", call, conf);
    assert.is(d.status, 0, d.stdout + d.stderr);
    assert.not.ok(natRules().includes(chain));
  }),
);

test(
  "dual-stack: one address per family, a default route per family",
  withHarness((h) => {
    const v4 = net(6);
    const v6 = subnet6(FILE, 6);
    const conf = h.conf({ subnets: [v4, v6] });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "dual-1", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const ips = r.json!.ips as IpEntry[];
    assert.is(ips.length, 2);
    assert.ok(ips[0]!.address.startsWith(prefixOf(v4)));
    assert.ok(ips[1]!.address.includes(":"));
    const routes = r.json!.routes as RouteEntry[];
    assert.ok(routes.some((x) => x.dst === "0.0.0.0/0"));
    assert.ok(routes.some((x) => x.dst === "::/0"));
    const addrs = pod.ipJson<Array<{ addr_info: Array<{ family: string; local: string; scope: string }> }>>([
      "addr",
      "show",
      "dev",
      "eth0",
    ])[0]!.addr_info;
    assert.is(addrs.filter((a) => a.family === "inet").length, 1);
    assert.is(addrs.filter((a) => a.family === "inet6" && a.scope === "global").length, 1);
    assert.ok(routesIn(pod, 6).some((x) => x.dst === "default"));
    assert.is(pod.exec(["cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"]).trim(), "0");
    const gw6 = ips[1]!.gateway!;
    // The bridge runs DAD on its new gateway address (as with the reference), so allow it a few seconds.
    pod.exec(["ping", "-6", "-c", "1", "-w", "5", gw6]);
    const d = h.weft("DEL", call, conf);
    assert.is(d.status, 0, d.stdout + d.stderr);
    assert.equal(h.reservations(), []);
  }),
);

test.run();
