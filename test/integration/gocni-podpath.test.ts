/**
 * The kube-flannel conflist (flannel -> bridge -> host-local, then portmap) driven the way containerd's
 * CRI plugin drives it: through go-cni (test/tools/gocni), with the loopback network beside it, CRI labels
 * in CNI_ARGS and 64-hex sandbox IDs. For each delegate set (reference, weft) and the list at cniVersion
 * 0.3.1 (as kube-flannel ships it) and 1.0.0.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { CriNode, type GocniSetup } from "../helpers/gocni.js";
import { assertRoot } from "../helpers/netns.js";
import { delegateSets, type Pod, reachable } from "../helpers/podpath.js";

function linkExists(name: string): boolean {
  try {
    execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Whether the pod's lo is up (a fresh netns has it down; go-cni's loopback network brings it up). */
function loUp(pod: Pod): boolean {
  const [lo] = pod.netns.ipJson<Array<{ flags: string[] }>>(["link", "show", "dev", "lo"]);
  return lo!.flags.includes("UP");
}

/** A pod as containerd creates it: a fresh netns, lo still down. */
function freshPod(node: CriNode): Pod {
  const pod = node.pod();
  pod.netns.exec(["ip", "link", "set", "lo", "down"]);
  return pod;
}

/** The flannel list's own result among go-cni's raw results (the loopback network's is the other one). */
function defaultRaw(r: GocniSetup): { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> } {
  return r.raw[1] as never;
}

const sets = await delegateSets();

for (const set of sets) {
  for (const version of ["0.3.1", "1.0.0"]) {
    const s = suite(`go-cni (containerd CRI): flannel list [${set} delegates] cniVersion ${version}`);
    let node: CriNode;
    let a: Pod;
    let b: Pod;
    let ra: GocniSetup;
    let rb: GocniSetup;

    s.before(async () => {
      assertRoot();
      node = await CriNode.create({ cniVersion: version, delegates: set });
    });
    s.after(() => node?.cleanup());

    s("Status succeeds: the loopback network and the flannel list are loaded", () => {
      const r = node.status();
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.json?.networks, [
        { name: "cni-loopback", cniVersion: "0.3.1", ifName: "lo" },
        { name: node.pp.netName, cniVersion: version, ifName: "eth0" },
      ]);
    });

    s("Status fails when the conf dir has no network (the check can fail)", () => {
      const empty = mkdtempSync(join(tmpdir(), "weft-gocni-empty-"));
      try {
        const r = node.status(empty);
        assert.is(r.status, 1);
        assert.match(String(r.json?.error), "cni plugin not initialized");
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });

    s("Setup: each pod gets an address of the node's subnet on eth0, lo is up", () => {
      a = freshPod(node);
      b = freshPod(node);
      ra = node.setupOk(a);
      rb = node.setupOk(b);
      const { gateway, subnet } = node.pp.net;
      const prefix = subnet!.replace(/\.0\/24$/, ".");
      for (const [pod, r] of [
        [a, ra],
        [b, rb],
      ] as const) {
        assert.ok(r.podIP.startsWith(prefix), `${r.podIP} in ${subnet}`);
        assert.equal(r.additionalIPs, []);
        assert.equal(r.result.Interfaces.eth0?.IPConfigs, [{ IP: r.podIP, Gateway: gateway! }]);
        assert.is(r.result.Interfaces.eth0?.Sandbox, pod.netns.path);
        assert.equal(
          r.result.Interfaces.lo?.IPConfigs?.map((c) => c.IP),
          ["127.0.0.1", "::1"],
        );
        assert.is(r.raw.length, 2);
        assert.equal(defaultRaw(r).ips[0]!.address, `${r.podIP}/24`);
        assert.ok(loUp(pod), "lo is up");
        const eth0 = pod.netns.ipJson<Array<{ addr_info: Array<{ family: string; local: string }> }>>([
          "addr",
          "show",
          "dev",
          "eth0",
        ]);
        assert.ok(eth0[0]!.addr_info.some((x) => x.family === "inet" && x.local === r.podIP));
      }
      assert.is.not(ra.podIP, rb.podIP);
      assert.equal(node.pp.savedConfigs().sort(), [a.containerId, b.containerId].sort());
      assert.equal(node.pp.reservations().sort(), [ra.podIP, rb.podIP].sort());
      assert.equal(
        node.pp.bridgePorts().sort(),
        [defaultRaw(ra).interfaces[1]!.name, defaultRaw(rb).interfaces[1]!.name].sort(),
      );
    });

    s("the pods reach the gateway, each other and their own loopback", () => {
      assert.ok(reachable(a, node.pp.net.gateway!), "a -> gateway");
      assert.ok(reachable(a, rb.podIP), "a -> b");
      assert.ok(reachable(b, ra.podIP), "b -> a");
      assert.ok(reachable(a, "127.0.0.1"), "a -> 127.0.0.1");
    });

    s("Check cannot pass with the loopback network (0.3.1): containerd never calls it", () => {
      // go-cni checks every network; libcni refuses CHECK below 0.4.0 before running any plugin.
      const r = node.check(a);
      assert.is(r.status, 1);
      assert.match(String(r.json?.error), 'configuration version "0.3.1" does not support the CHECK command');
    });

    s("Remove leaves nothing of the pod: veth, eth0, reservation, saved config, cached result", () => {
      const veth = defaultRaw(ra).interfaces[1]!.name;
      assert.ok(node.cachedResultExists(a));
      const r = node.remove(a);
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.not.ok(linkExists(veth), `${veth} still exists`);
      assert.equal(
        a.netns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
        ["lo"],
      );
      assert.not.ok(node.pp.reservations().includes(ra.podIP));
      assert.not.ok(node.pp.savedConfigs().includes(a.containerId));
      assert.not.ok(node.cachedResultExists(a));
      assert.not.ok(node.pp.bridgePorts().includes(veth));
      // The kubelet retries StopPodSandbox until it succeeds: a second Remove succeeds.
      const again = node.remove(a);
      assert.is(again.status, 0, again.stdout + again.stderr);
      assert.ok(reachable(b, node.pp.net.gateway!), "the other pod is untouched");
    });

    s("Remove once the netns is gone (the CRI plugin then passes no path) releases everything", () => {
      b.netns.delete();
      const r = node.remove(b, { netnsPath: "" });
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.equal(node.pp.reservations(), []);
      assert.equal(node.pp.savedConfigs(), []);
      assert.equal(node.pp.bridgePorts(), []);
      assert.not.ok(node.cachedResultExists(b));
      assert.ok(existsSync(node.pp.confDir), "the node's config stays");
    });

    s.run();
  }
}
