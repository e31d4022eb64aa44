/**
 * Switching a live node from the reference plugins to weft and back (the drop-in promise). A node (a
 * network namespace with its own bin, conf and state directories) runs pods through the kube-flannel
 * list on Debian's reference bridge, host-local and portmap (v1.1.1, /usr/lib/cni), one pod publishing a
 * hostPort; `weft install --force` replaces them under the running pods; the old pods keep working and
 * DEL cleanly through weft, new pods ADD through weft; `weft uninstall --restore` puts the reference
 * back, and the reference DELs what weft created. Nothing of the pods is left at the end.
 *
 * Debian ships no reference `flannel` plugin (flannel-io/cni-plugin), and nothing here may download one,
 * so the node's "reference" flannel is a stand-in: a wrapper script running weft's packaged flannel. To
 * `weft install` it is a foreign program like the others (not an ELF weft executable): it is replaced,
 * kept as flannel.orig and restored. The delegates, whose state (veths, reservations, masquerade and
 * portmap chains) must survive the switch, are the reference's throughout.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { recordsOf, removeRecordFiles } from "../../plugins/portmap/record.js";
import { masqChainName } from "../../shared/net/ipmasq.js";
import { type CnitoolRun, cnitool } from "../helpers/cnitool.js";
import { Servers, tcpOnce } from "../helpers/hostport.js";
import { listing, weftExe, weftOk } from "../helpers/install.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { REFERENCE_DIR } from "../helpers/podpath.js";

const Switch = suite("switching a live node");

const NET = "cbr0";
const SUBNET = "10.244.9";
const GATEWAY = `${SUBNET}.1`;
const DELEGATES = ["bridge", "host-local", "portmap"];

interface Pod {
  ns: TestNetns;
  id: string;
  ip?: string;
  hostPort?: number;
}

let node: TestNetns | undefined;
let root = "";
const pods: Pod[] = [];
const servers: Servers[] = [];

Switch.before(() => {
  assertRoot();
});
Switch.after(() => {
  for (const s of servers) s.stop();
  for (const p of pods) p.ns.delete();
  // weft's portmap records what its ADDs installed (plugins/portmap/record.ts); the reference's DELs of
  // weft's pods leave those records, as on a node switched back (harmless: no record outlives /run).
  if (node) removeRecordFiles(NET, recordsOf(NET, statSync(node.path).ino));
  node?.delete(); // the bridge, the veths and every chain go with it
  if (root) rmSync(root, { recursive: true, force: true });
});

const dir = (name: string) => join(root, name);

function cni(verb: "add" | "del", pod: Pod): CnitoolRun {
  return cnitool(verb, NET, pod.ns.path, {
    confDir: dir("net.d"),
    cniPath: dir("bin"),
    cacheDir: dir("cache"),
    clientNetns: node!.path,
    containerId: pod.id,
    ...(pod.hostPort
      ? { capArgs: { portMappings: [{ hostPort: pod.hostPort, containerPort: 80, protocol: "tcp" }] } }
      : {}),
  });
}

function add(id: string, hostPort?: number): Pod {
  const pod: Pod = { ns: TestNetns.create("wswp"), id, ...(hostPort ? { hostPort } : {}) };
  pods.push(pod);
  const r = cni("add", pod);
  assert.is(r.status, 0, `ADD ${id}: ${r.stdout}${r.stderr}`);
  pod.ip = ((r.json?.ips ?? []) as Array<{ address: string }>)[0]!.address.split("/")[0]!;
  if (hostPort) servers.push(new Servers(pod.ns, id));
  return pod;
}

function del(pod: Pod): void {
  const r = cni("del", pod);
  assert.is(r.status, 0, `DEL ${pod.id}: ${r.stdout}${r.stderr}`);
}

const ping = (from: Pod, to: string) => {
  from.ns.exec(["ping", "-n", "-c", "1", "-W", "2", to]);
};

/** The hostPort's answer, asked from the node and from another pod (hairpin through the bridge). */
function assertHostPort(pod: Pod, from: Pod): void {
  for (const [where, ns] of [
    ["the node", node!],
    [from.id, from.ns],
  ] as const) {
    let answer: string | undefined;
    for (let i = 0; i < 10 && answer === undefined; i++) answer = tcpOnce(ns, GATEWAY, pod.hostPort!);
    assert.is(answer, pod.id, `${pod.id}'s hostPort ${pod.hostPort} from ${where}`);
  }
}

const nodeNat = () =>
  node!
    .exec(["iptables-save", "-t", "nat"])
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");

/** What a pod leaves on the node while it is there: reservation, saved config, chains, veth. */
function traces(pod: Pod): string[] {
  const out: string[] = [];
  const reservations = readdirSync(join(dir("ipam"), NET)).filter((f) => f === pod.ip);
  out.push(...reservations.map((f) => `reservation ${f}`));
  try {
    readFileSync(join(dir("flannel"), pod.id));
    out.push(`saved config ${pod.id}`);
  } catch {
    // none
  }
  const nat = nodeNat();
  for (const chain of [dnatChainName(NET, pod.id), masqChainName(NET, pod.id)])
    if (nat.includes(chain)) out.push(`chain ${chain}`);
  return out;
}

const bridgePorts = () => node!.ipJson<Array<{ ifname: string }>>(["link", "show", "master", "cni0"]).length;

Switch(
  "reference -> weft install --force -> old pods work and DEL through weft -> uninstall --restore -> reference DELs weft's pods",
  () => {
    node = TestNetns.create("wsw");
    node.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]); // hairpin hostPort traffic is routed
    root = mkdtempSync(join(tmpdir(), "weft-switch-"));
    mkdirSync(dir("bin"));
    mkdirSync(dir("net.d"));
    for (const n of [...DELEGATES, "loopback"]) copyFileSync(join(REFERENCE_DIR, n), join(dir("bin"), n));
    writeFileSync(join(dir("bin"), "flannel"), `#!/bin/bash\nexec -a flannel "${weftExe()}" "$@"\n`, {
      mode: 0o755,
    });
    writeFileSync(
      dir("subnet.env"),
      `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${GATEWAY}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`,
    );
    const list = {
      name: NET,
      cniVersion: "0.3.1",
      plugins: [
        {
          type: "flannel",
          subnetFile: dir("subnet.env"),
          dataDir: dir("flannel"),
          ipam: { dataDir: dir("ipam") },
          delegate: { hairpinMode: true, isDefaultGateway: true },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    };
    const listText = `${JSON.stringify(list, null, 2)}\n`;
    writeFileSync(join(dir("net.d"), "10-flannel.conflist"), listText);
    writeFileSync(dir("cni-conf.json"), listText);
    const binBefore = listing(dir("bin"));
    const dirArgs = ["--bin-dir", dir("bin"), "--conf-dir", dir("net.d")];

    // On the reference: two pods, one with a hostPort (bridge ipMasq too: FLANNEL_IPMASQ=false).
    const a = add("switch-a", 18080);
    const b = add("switch-b");
    ping(a, b.ip!);
    assertHostPort(a, b);
    assert.equal(traces(a).length, 4, `the reference's state of ${a.id}: ${traces(a)}`);

    // The switch, under the running pods.
    const inst = weftOk(["install", ...dirArgs, "--conflist", dir("cni-conf.json"), "--force"], {
      netns: node,
    });
    for (const n of ["flannel", ...DELEGATES]) {
      assert.ok(inst.lines.includes(`replaced ${dir("bin")}/${n} -> weft`), inst.stdout);
      assert.ok(readFileSync(join(dir("bin"), `${n}.orig`)).length > 0);
    }
    assert.not.match(inst.stdout, /10-flannel\.conflist/, "the node's list is the same list: left alone");

    // The old pods still work, and a new one ADDs through weft.
    ping(a, b.ip!);
    ping(b, a.ip!);
    assertHostPort(a, b);
    const c = add("switch-c", 18081);
    ping(c, a.ip!);
    assertHostPort(c, b);
    assert.equal(traces(c).length, 4, `weft's state of ${c.id}: ${traces(c)}`);

    // The reference's pod DELs cleanly through weft: reservation, saved config, chains and veth gone.
    const ports = bridgePorts();
    del(a);
    assert.equal(traces(a), [], `left of ${a.id} after weft's DEL`);
    assert.is(bridgePorts(), ports - 1);
    assert.is(tcpOnce(node, GATEWAY, a.hostPort!), undefined, "the hostPort is gone");

    // Back to the reference, which DELs what weft created (and the pod that lived through both switches).
    const un = weftOk(["uninstall", ...dirArgs, "--restore"], { netns: node });
    for (const n of ["flannel", ...DELEGATES])
      assert.ok(un.lines.includes(`restored ${dir("bin")}/${n} from ${dir("bin")}/${n}.orig`), un.stdout);
    assert.equal(listing(dir("bin")), binBefore, "the bin dir is the reference's again, byte for byte");
    ping(c, b.ip!);
    del(c);
    assert.equal(traces(c), [], `left of ${c.id} after the reference's DEL`);
    del(b);
    assert.equal(traces(b), []);

    // Nothing of any pod is left: no reservation, saved config, per-pod chain or veth.
    assert.equal(
      readdirSync(join(dir("ipam"), NET)).filter((f) => /^\d/.test(f)),
      [],
      "no reservation",
    );
    assert.equal(readdirSync(dir("flannel")), [], "no saved flannel config");
    assert.not.match(nodeNat(), /CNI-DN-|CNI-[0-9a-f]{24}|name: \\"cbr0\\"/);
    assert.is(bridgePorts(), 0);
    assert.equal(readdirSync(dir("net.d")), ["10-flannel.conflist"]);
    assert.is(readFileSync(join(dir("net.d"), "10-flannel.conflist"), "utf8"), listText);
  },
);

Switch.run();
