/**
 * The pure parts of weft doctor's checks: what counts as right for cni0, the rules, the routes, kube-ipvs0,
 * the leaks' chains and the namespaces a runtime can name.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compareBridge, gatewayOf } from "../../cli/doctor/bridge.js";
import { hasForwardRules, hasMasqRules, policyOf } from "../../cli/doctor/forwarding.js";
import { ipvsServiceAddresses } from "../../cli/doctor/ipvs.js";
import { dnatChainsOf } from "../../cli/doctor/leaks.js";
import { ownLease } from "../../cli/doctor/lease.js";
import { nsfsMounts } from "../../cli/doctor/pods.js";
import { remoteRoutes, routeServes } from "../../cli/doctor/routes.js";
import type { Lease } from "../../daemon/lease.js";
import { forwardRules, masqRules } from "../../daemon/rules.js";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import type { SubnetEnv } from "../../shared/flannel/subnet-env.js";
import type { LinkRecord } from "../../shared/net/link.js";

const env: SubnetEnv = {
  networks: ["10.244.0.0/16"],
  subnet: "10.244.3.0/24",
  ipv6Networks: [],
  mtu: 1450,
  ipMasq: true,
};
const bridge = (addrs: Array<[string, number]>, mtu = 1450): LinkRecord => ({
  ifindex: 5,
  ifname: "cni0",
  mtu,
  addr_info: addrs.map(([local, prefixlen]) => ({
    family: local.includes(":") ? "inet6" : "inet",
    local,
    prefixlen,
  })),
});

test("cni0: the gateway of FLANNEL_SUBNET, nothing else of IPv4; the MTU of FLANNEL_MTU", () => {
  assert.is(gatewayOf("10.244.3.0/24"), "10.244.3.1/24");
  assert.is(gatewayOf("fd10:0:0:3::/64"), "fd10:0:0:3::1/64");
  const good = compareBridge(
    bridge([
      ["10.244.3.1", 24],
      ["fe80::1", 64],
    ]),
    [],
    env,
  );
  assert.equal(good, { wrong: [], missing: [], bigPorts: [] });
  // The anchors' 6.2: the subnet changed and the bridge kept the old gateway.
  assert.equal(compareBridge(bridge([["10.244.7.1", 24]]), [], env).wrong, ["10.244.7.1/24"]);
  assert.equal(compareBridge(bridge([["10.244.7.1", 24]]), [], env).missing, ["10.244.3.1/24"]);
  // Same address, another prefix: the reference compares the whole IPNet.
  assert.equal(compareBridge(bridge([["10.244.3.1", 16]]), [], env).wrong, ["10.244.3.1/16"]);
  // No address yet: nothing wrong (the next ADD adds it).
  assert.equal(compareBridge(bridge([]), [], env).wrong, []);
  const port = { ifindex: 9, ifname: "veth1", mtu: 1500, master: "cni0" };
  const f = compareBridge(bridge([["10.244.3.1", 24]], 1500), [port], env);
  assert.equal(f.mtu, { bridge: 1500, want: 1450 });
  assert.equal(f.bigPorts, ["veth1"]);
});

test("cni0, IPv6: another address is fine unless its subnet overlaps the gateway's", () => {
  const dual: SubnetEnv = { ...env, ipv6Networks: ["fd10::/48"], ipv6Subnet: "fd10:0:0:3::/64" };
  const ok = compareBridge(
    bridge([
      ["10.244.3.1", 24],
      ["fd10:0:0:3::1", 64],
      ["fd99::1", 64],
    ]),
    [],
    dual,
  );
  assert.equal(ok.wrong, []);
  const bad = compareBridge(
    bridge([
      ["10.244.3.1", 24],
      ["fd10:0:0:3::1", 64],
      ["fd10:0:0:3::9", 64],
    ]),
    [],
    dual,
  );
  assert.equal(bad.wrong, ["fd10:0:0:3::9/64"]);
});

/** A saved table holding `rules` (iptables-save's `-A` lines) with their chains declared. */
function table(policy: string, rules: string[]): string {
  const chains = new Set(rules.map((r) => r.split(" ")[1]!));
  const builtin = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
  return [
    ...builtin.map((c) => `:${c} ${c === "FORWARD" ? policy : "ACCEPT"} [0:0]`),
    ...[...chains].filter((c) => !builtin.includes(c)).map((c) => `:${c} - [0:0]`),
    ...rules,
  ].join("\n");
}

test("FORWARD policy and weftd's chains, compared with what daemon/rules.ts builds", () => {
  const fwd = forwardRules("10.244.0.0/16");
  assert.is(policyOf(table("DROP", fwd), "FORWARD"), "DROP");
  assert.ok(hasForwardRules(table("DROP", fwd), "10.244.0.0/16"));
  assert.not.ok(hasForwardRules(table("DROP", fwd.slice(1)), "10.244.0.0/16"), "no jump from FORWARD");
  assert.not.ok(
    hasForwardRules(table("DROP", forwardRules("10.9.0.0/16")), "10.244.0.0/16"),
    "another network",
  );
  for (const rf of [true, false]) {
    const masq = masqRules(4, "10.244.0.0/16", "10.244.3.0/24", rf);
    assert.ok(hasMasqRules(table("ACCEPT", masq), 4, "10.244.0.0/16", "10.244.3.0/24"));
    assert.not.ok(hasMasqRules(table("ACCEPT", masq), 4, "10.244.0.0/16", "10.244.7.0/24"), "another lease");
    assert.not.ok(hasMasqRules(table("ACCEPT", masq.slice(0, -1)), 4, "10.244.0.0/16", "10.244.3.0/24"));
  }
});

const lease = (subnet: string, ip: string, type = "vxlan", mac = "0a:00:00:00:00:01"): Lease => ({
  subnet,
  attrs: { PublicIP: ip, PublicIPv6: null, BackendType: type, BackendData: { VNI: 1, VtepMAC: mac } },
});

test("own lease by public IP; the other leases as routes to check", () => {
  const leases = [lease("10.244.3.0/24", "192.168.77.1"), lease("10.244.9.0/24", "192.168.77.2", "host-gw")];
  assert.is(ownLease(leases, ["127.0.0.1", "192.168.77.1"]), leases[0]);
  assert.is(ownLease(leases, ["192.168.77.9"]), undefined);
  assert.equal(remoteRoutes(leases, leases[0], 4, "10.244.3.0/24"), [
    { subnet: "10.244.9.0/24", publicIp: "192.168.77.2", backend: "host-gw", mac: "0a:00:00:00:00:01" },
  ]);
});

test("a route serves a remote lease as its backend programs it", () => {
  const vx = {
    subnet: "10.244.9.0/24",
    publicIp: "192.168.77.2",
    backend: "vxlan",
    mac: "0a:00:00:00:00:02",
  };
  const onlink = { dst: "10.244.9.0/24", gateway: "10.244.9.0", dev: "flannel.1", flags: ["onlink"] };
  assert.ok(routeServes(onlink, vx, 4, "flannel.1"));
  assert.not.ok(routeServes({ ...onlink, dev: "flannel.2" }, vx, 4, "flannel.1"));
  // DirectRouting, or host-gw: via the public IP.
  assert.ok(routeServes({ dst: "10.244.9.0/24", gateway: "192.168.77.2", dev: "eth0" }, vx, 4, "flannel.1"));
  const hg = { ...vx, backend: "host-gw" };
  assert.not.ok(routeServes(onlink, hg, 4, "flannel.1"));
  assert.not.ok(
    routeServes({ dst: "10.244.8.0/24", gateway: "192.168.77.2", dev: "eth0" }, hg, 4, "flannel.1"),
  );
});

test("/proc/net/ip_vs: the addresses of the virtual services", () => {
  const text = [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn",
    "TCP  0A600001:01BB rr",
    "  -> C0A80371:192B      Masq    1      0          0",
    "UDP  0A60000A:0035 rr",
    "TCP  [fd00:0000:0000:0000:0000:0000:0000:0001]:0050 rr",
    "FWM  00000001 rr",
  ].join("\n");
  assert.equal([...ipvsServiceAddresses(text)], ["10.96.0.1", "10.96.0.10", "fd00::1"]);
  assert.equal([...ipvsServiceAddresses("")], []);
});

test("portmap's CNI-DN- chains of one network, with the container and its addresses", () => {
  const a = dnatChainName("cbr0", "abc");
  const b = dnatChainName("other", "def");
  const saved = [
    ":CNI-HOSTPORT-DNAT - [0:0]",
    `:${a} - [0:0]`,
    `:${b} - [0:0]`,
    `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"abc\\"" -m multiport --dports 8080 -j ${a}`,
    `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"other\\" id: \\"def\\"" -m multiport --dports 8081 -j ${b}`,
    // A comment whose hash does not name the chain (cut short, or forged) is not trusted.
    `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"zzz\\"" -m multiport --dports 8082 -j ${b}`,
    `-A ${a} -s 10.244.3.5/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK`,
    `-A ${a} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.3.5:80`,
  ].join("\n");
  assert.equal(dnatChainsOf(saved, "cbr0"), [{ chain: a, containerId: "abc", destinations: ["10.244.3.5"] }]);
  assert.equal(dnatChainsOf(saved, "nothing"), []);
});

test("nsfs mounts from mountinfo: the namespaces a runtime can still name", () => {
  const mi = [
    "24 30 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw",
    "612 31 0:4 net:[4026532721] /run/netns/cni-1234 rw shared:300 - nsfs nsfs rw",
    "613 31 0:4 net:[4026532800] /run/docker/netns/ab\\040cd rw - nsfs nsfs rw",
  ].join("\n");
  assert.equal(nsfsMounts(mi), ["/run/netns/cni-1234", "/run/docker/netns/ab cd"]);
});

test.run();
