/**
 * The flannel list driven by a caller that entered the node's network namespace with setns() (here
 * `nsenter --net=`), as Go test harnesses, some runtimes and node simulators do: unlike `ip netns exec`,
 * that does not remount /sys, so /sys/class/net still shows the namespace of the test process. The
 * plugins must read link state through netlink answers (or a /sys they proved to be theirs): every link
 * the result names is the node's, and nothing the host's /sys shows leaks in. A host bridge of the same
 * name as the node's is a trap for any /sys read.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type PluginRun, pluginRunOf } from "../helpers/plugin.js";
import { delegateSets, installWeft, ipOf, type Pod, PodPath, reachable } from "../helpers/podpath.js";

interface Iface {
  name: string;
  mac?: string;
  sandbox?: string;
}
interface AddResult {
  interfaces: Iface[];
  ips: Array<{ address: string; gateway?: string }>;
}
interface LinkJson {
  ifname: string;
  address: string;
  mtu: number;
  master?: string;
  operstate: string;
}

function nodeLinks(node: TestNetns): LinkJson[] {
  return node.ipJson<LinkJson[]>(["link"]);
}

function hostHas(name: string): boolean {
  try {
    execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The result names the node's bridge and host veth and the pod's interface, with their real MACs. */
function assertNodeLinks(pp: PodPath, node: TestNetns, pod: Pod, r: AddResult): void {
  const links = nodeLinks(node);
  const [br, veth, cont] = r.interfaces;
  const nodeBr = links.find((l) => l.ifname === pp.bridge);
  const nodeVeth = links.find((l) => l.ifname === veth!.name);
  assert.ok(nodeBr, `the bridge ${pp.bridge} is in the node namespace`);
  assert.ok(nodeVeth, `the host veth ${veth!.name} is in the node namespace`);
  assert.is(br!.mac, nodeBr!.address, "bridge MAC is the node bridge's");
  assert.is(veth!.mac, nodeVeth!.address, "host veth MAC is the node veth's");
  assert.is(nodeVeth!.master, pp.bridge);
  assert.is(nodeVeth!.mtu, pp.net.mtu);
  assert.not.ok(hostHas(veth!.name), "no veth in the test's own namespace");
  const podLink = pod.netns.ipJson<LinkJson[]>(["link", "show", "dev", pod.ifname])[0]!;
  assert.is(cont!.mac, podLink.address, "pod MAC is the pod interface's");
}

const sets = await delegateSets();

for (const set of sets) {
  const s = suite(`flannel list [${set} delegates] entered with nsenter --net (the host's /sys)`);
  let node: TestNetns;
  let pp: PodPath;
  let a: Pod;
  let b: Pod;
  let ra: AddResult;
  let rb: AddResult;
  let trap = "";

  s.before(async () => {
    assertRoot();
    node = TestNetns.create("wnd");
    pp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, node });
  });
  s.after(() => {
    pp?.cleanup();
    if (trap) execFileSync("ip", ["link", "del", trap], { stdio: "ignore" });
    node?.delete();
  });

  s("first ADD creates the bridge in the node namespace and reports its links", () => {
    a = pp.pod();
    const r = pp.add(a);
    assert.is(r.status, 0, r.stdout + r.stderr);
    ra = r.json as unknown as AddResult;
    assert.ok(pp.bridgeExists(), "bridge in the node namespace");
    assert.not.ok(hostHas(pp.bridge), "no bridge in the test's own namespace");
    assertNodeLinks(pp, node, a, ra);
  });

  s("second ADD reuses the bridge, even with a same-named bridge in the /sys it sees", () => {
    // Whatever reads /sys/class/net/<bridge> now finds this one, with another MAC and MTU.
    trap = pp.bridge;
    execFileSync("ip", ["link", "add", trap, "mtu", "1300", "type", "bridge"]);
    b = pp.pod();
    const r = pp.add(b);
    assert.is(r.status, 0, r.stdout + r.stderr);
    rb = r.json as unknown as AddResult;
    assertNodeLinks(pp, node, b, rb);
    assert.is(rb.interfaces[0]!.mac, ra.interfaces[0]!.mac, "the bridge MAC stays pinned");
    assert.equal(pp.bridgePorts().sort(), [ra.interfaces[1]!.name, rb.interfaces[1]!.name].sort());
    const hostTrap = JSON.parse(
      execFileSync("ip", ["-j", "link", "show", "dev", trap], { encoding: "utf8" }),
    );
    assert.is(hostTrap[0].mtu, 1300, "the host's bridge is untouched");
  });

  s("the pods reach each other and the gateway", () => {
    assert.ok(reachable(a, ipOf(rb.ips[0]!.address)), "a -> b");
    assert.ok(reachable(b, pp.net.gateway!), "b -> gateway");
  });

  s("CHECK passes on the healthy pods and fails on a broken one", () => {
    for (const p of [a, b]) {
      const r = pp.check(p);
      assert.is(r.status, 0, r.stdout + r.stderr);
    }
    execFileSync("ip", ["-n", node.name, "link", "set", "dev", rb.interfaces[1]!.name, "nomaster"]);
    const broken = pp.check(b);
    assert.is(broken.status, 1, "CHECK must notice the veth off the bridge");
    assert.match(String(broken.json?.msg), /CNI veth created for bridge .* was not found/);
    execFileSync("ip", ["-n", node.name, "link", "set", "dev", rb.interfaces[1]!.name, "master", pp.bridge]);
  });

  s("DEL removes both veth ends, the reservation and the saved config; DEL twice succeeds", () => {
    for (const [p, r] of [
      [a, ra],
      [b, rb],
    ] as const) {
      const del = pp.del(p);
      assert.is(del.status, 0, del.stdout + del.stderr);
      assert.equal(
        p.netns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
        ["lo"],
      );
      assert.not.ok(
        nodeLinks(node).some((l) => l.ifname === r.interfaces[1]!.name),
        "host veth gone",
      );
      assert.is(pp.del(p).status, 0, "DEL twice");
    }
    assert.equal(pp.bridgePorts(), []);
    assert.equal(pp.reservations(), []);
    assert.equal(pp.savedConfigs(), []);
  });

  s("ADD on the emptied bridge works again", () => {
    const c = pp.pod();
    const r = pp.add(c);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assertNodeLinks(pp, node, c, r.json as unknown as AddResult);
    assert.is(pp.del(c).status, 0);
  });

  s.run();

  const m = suite(`flannel list [${set} delegates] nsenter --net: masquerade and spoof check in the node`);
  let mnode: TestNetns;
  let mp: PodPath;
  m.before(async () => {
    assertRoot();
    mnode = TestNetns.create("wnd");
    mp = await PodPath.create({
      cniVersion: "1.0.0",
      delegates: set,
      node: mnode,
      ipMasq: false,
      withoutPortmap: true,
      edit: (l) => {
        const flannel = l.plugins.find((p) => p.type === "flannel")!;
        flannel.delegate = { ...(flannel.delegate as object), macspoofchk: true };
      },
    });
  });
  m.after(() => {
    mp?.cleanup();
    mnode?.delete();
  });

  m("ADD, CHECK, DEL: the rules live in the node namespace and go with DEL", () => {
    const pod = mp.pod();
    const r = mp.add(pod);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assertNodeLinks(mp, mnode, pod, r.json as unknown as AddResult);
    const nat = () => mnode.exec(["iptables-save", "-t", "nat"]);
    assert.match(nat(), `id: \\"${pod.containerId}\\"`);
    assert.not.match(execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }), pod.containerId);
    const spoof = () => mnode.exec(["nft", "list", "ruleset"]);
    const mac = (r.json as unknown as AddResult).interfaces[2]!.mac!;
    assert.match(spoof(), `ether saddr ${mac} return comment "macspoofchk-`);
    assert.is(mp.check(pod).status, 0);
    const del = mp.del(pod);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.not.match(nat(), pod.containerId);
    assert.not.match(spoof(), mac);
    assert.equal(mp.bridgePorts(), []);
    assert.equal(
      pod.netns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
      ["lo"],
    );
  });

  m.run();
}

/** weft's bridge alone, run as `nsenter --net=<node> bridge`, as a Go harness drives a plugin. */
function bridgeIn(node: TestNetns, verb: string, pod: TestNetns, conf: object): PluginRun {
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: verb,
    CNI_CONTAINERID: `l2-${pod.name}`,
    CNI_NETNS: pod.path,
    CNI_IFNAME: "eth0",
    CNI_PATH: l2bin,
  };
  const exe = join(l2bin, "bridge");
  const r = spawnSync("nsenter", [`--net=${node.path}`, "--", exe], {
    env,
    input: JSON.stringify(conf),
    encoding: "utf8",
  });
  return pluginRunOf(r);
}

const l2 = suite("bridge alone, layer 2 (no IPAM), entered with nsenter --net");
let l2node: TestNetns;
let l2pod: TestNetns;
let l2bin = "";
const l2br = uniqueName("wl2");
l2.before(() => {
  assertRoot();
  l2bin = mkdtempSync(join(tmpdir(), "weft-l2-bin-"));
  installWeft(l2bin, "bridge");
  l2node = TestNetns.create("wnd");
  l2pod = TestNetns.create("wpp");
});
l2.after(() => {
  l2pod?.delete();
  l2node?.delete();
  if (l2bin) rmSync(l2bin, { recursive: true, force: true });
});

l2("ADD reports the node's bridge and veth; CHECK passes; DEL removes the veth", () => {
  const conf = { cniVersion: "1.0.0", name: uniqueName("wl2n"), type: "bridge", bridge: l2br, mtu: 1400 };
  const r = bridgeIn(l2node, "ADD", l2pod, conf);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const [br, veth, cont] = r.json!.interfaces as Iface[];
  const links = nodeLinks(l2node);
  assert.is(br!.mac, links.find((l) => l.ifname === l2br)?.address);
  assert.is(veth!.mac, links.find((l) => l.ifname === veth!.name)?.address);
  assert.is(cont!.mac, l2pod.ipJson<LinkJson[]>(["link", "show", "dev", "eth0"])[0]!.address);
  assert.is(links.find((l) => l.ifname === veth!.name)?.operstate, "UP");
  const check = bridgeIn(l2node, "CHECK", l2pod, { ...conf, prevResult: r.json });
  assert.is(check.status, 0, check.stdout + check.stderr);
  const del = bridgeIn(l2node, "DEL", l2pod, conf);
  assert.is(del.status, 0, del.stdout + del.stderr);
  assert.equal(
    l2pod.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
    ["lo"],
  );
  assert.not.ok(nodeLinks(l2node).some((l) => l.ifname === veth!.name));
});

l2.run();
