import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { hostJson, natRules, subnet, withHarness } from "./bridge-harness.js";

/** The less common bridge keys against the kernel: L2 mode, port flags, VLANs, spoof check; GC and STATUS. */

assertRoot();
const FILE = 3;
const net = (n: number) => subnet(FILE, n);

const sys = (path: string) => readFileSync(path, "utf8").trim();
const vethOf = (r: { json?: Record<string, unknown> }) =>
  (r.json!.interfaces as Array<{ name: string; mac?: string }>)[1]!.name;

test(
  "L2 only (no IPAM type): the pod interface is up, no address, no gateway on the bridge",
  withHarness((h) => {
    const pod = h.pod();
    const conf = { cniVersion: "1.0.0", name: h.name, type: "bridge", bridge: h.bridge, ipam: {} };
    const call = { netns: pod.path, containerId: "l2-1", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is((r.json!.interfaces as unknown[]).length, 3);
    assert.not.ok("ips" in r.json!);
    const eth0 = pod.ipJson<
      Array<{ operstate: string; addr_info: Array<{ family: string; scope: string }> }>
    >(["addr", "show", "dev", "eth0"])[0]!;
    assert.is(eth0.operstate, "UP");
    assert.not.ok(eth0.addr_info.some((a) => a.family === "inet"));
    // Hairpin defaults to off and is set explicitly.
    assert.is(sys(`/sys/class/net/${vethOf(r)}/brport/hairpin_mode`), "0");
    assert.is(h.weft("DEL", call, conf).status, 0);
    assert.equal(h.ports(), []);
  }),
);

test(
  "disableContainerInterface leaves the pod interface down; with IPAM it is refused",
  withHarness((h) => {
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "dci-1", ifname: "eth0" };
    const refused = h.weft(
      "ADD",
      call,
      h.conf({ subnets: [net(1)], extra: { disableContainerInterface: true } }),
    );
    assert.is(refused.status, 1);
    assert.is(refused.json!.msg, "cannot use IPAM when DisableContainerInterface flag is set");
    const conf = {
      cniVersion: "1.0.0",
      name: h.name,
      type: "bridge",
      bridge: h.bridge,
      disableContainerInterface: true,
    };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is(
      pod.ipJson<Array<{ operstate: string }>>(["link", "show", "dev", "eth0"])[0]!.operstate,
      "DOWN",
    );
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test(
  "portIsolation sets the port isolated; promiscMode sets the bridge promiscuous; CHECK sees both",
  withHarness((h) => {
    const pod = h.pod();
    const conf = h.conf({
      subnets: [net(2)],
      extra: { portIsolation: true, promiscMode: true, hairpinMode: false },
    });
    const call = { netns: pod.path, containerId: "flags-1", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is(sys(`/sys/class/net/${vethOf(r)}/brport/isolated`), "1");
    assert.is(Number.parseInt(sys(`/sys/class/net/${h.bridge}/flags`), 16) & 0x100, 0x100);
    const ok = h.weft("CHECK", call, { ...conf, prevResult: r.json });
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    const mismatch = h.weft("CHECK", call, { ...conf, promiscMode: false, prevResult: r.json });
    assert.is(mismatch.status, 1);
    assert.match(
      String(mismatch.json!.msg),
      /configured Promisc Mode false doesn't match current state: true/,
    );
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test(
  "hairpinMode with promiscMode is refused before anything is done",
  withHarness((h) => {
    const pod = h.pod();
    const r = h.weft(
      "ADD",
      { netns: pod.path, containerId: "hp-1", ifname: "eth0" },
      h.conf({ subnets: [net(3)], extra: { promiscMode: true } }),
    );
    assert.is(r.status, 1);
    assert.is(r.json!.msg, "cannot set hairpin mode and promiscuous mode at the same time");
    assert.equal(h.reservations(), []);
  }),
);

/** Whether this kernel has bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); the lab VM's has not. */
function kernelHasVlanFiltering(name: string): boolean {
  try {
    execFileSync("ip", ["link", "add", name, "type", "bridge", "vlan_filtering", "1"], { stdio: "ignore" });
    execFileSync("ip", ["link", "del", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test(
  "vlan: the bridge filters VLANs, the port carries the VLAN as PVID untagged (and no default VLAN)",
  withHarness((h) => {
    const pod = h.pod();
    const conf = h.conf({ subnets: [net(4)], extra: { vlan: 100, preserveDefaultVlan: false } });
    const call = { netns: pod.path, containerId: "vlan-1", ifname: "eth0" };
    if (!kernelHasVlanFiltering(h.bridge)) {
      // Then bridge creation fails as the reference's does, and nothing is left behind.
      const refused = h.weft("ADD", call, conf);
      assert.is(refused.status, 1);
      assert.match(String(refused.json!.msg), /could not add .*: operation not supported/);
      assert.equal(h.reservations(), []);
      return;
    }
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is(sys(`/sys/class/net/${h.bridge}/bridge/vlan_filtering`), "1");
    const vlans = JSON.parse(
      execFileSync("bridge", ["-j", "vlan", "show", "dev", vethOf(r)], { encoding: "utf8" }),
    ) as Array<{
      vlans: Array<{ vlan: number; flags?: string[] }>;
    }>;
    assert.equal(vlans[0]!.vlans, [{ vlan: 100, flags: ["PVID", "Egress Untagged"] }]);
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test(
  "macspoofchk: nft bridge rules for the port, removed on DEL",
  withHarness((h) => {
    const pod = h.pod();
    const conf = h.conf({ subnets: [net(5)], extra: { macspoofchk: true } });
    const id = `spoof${process.pid}`;
    const call = { netns: pod.path, containerId: id, ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const mac = (r.json!.interfaces as Array<{ mac: string }>)[2]!.mac;
    const rules = execFileSync("nft", ["list", "table", "bridge", "nat"], { encoding: "utf8" });
    assert.match(
      rules,
      `iifname "${vethOf(r)}" jump cni-br-iface-${id}-eth0 comment "macspoofchk-${id}-eth0"`,
    );
    assert.match(rules, `ether saddr ${mac} return comment "macspoofchk-${id}-eth0"`);
    assert.is(h.weft("DEL", call, conf).status, 0);
    const after = execFileSync("nft", ["list", "table", "bridge", "nat"], { encoding: "utf8" });
    assert.not.match(after, `macspoofchk-${id}-eth0`);
  }),
);

test(
  "GC removes masquerade chains of attachments that are no longer valid, and keeps the valid ones",
  withHarness((h) => {
    const conf = h.conf({ cniVersion: "1.1.0", subnets: [net(6)], extra: { ipMasq: true } });
    const a = h.pod();
    const b = h.pod();
    assert.is(h.weft("ADD", { netns: a.path, containerId: "gc-keep", ifname: "eth0" }, conf).status, 0);
    assert.is(h.weft("ADD", { netns: b.path, containerId: "gc-gone", ifname: "eth0" }, conf).status, 0);
    const gc = h.weft(
      "GC",
      {},
      { ...conf, "cni.dev/valid-attachments": [{ containerID: "gc-keep", ifname: "eth0" }] },
    );
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    const saved = natRules();
    assert.ok(saved.includes('id: \\"gc-keep\\"'));
    assert.not.ok(saved.includes('id: \\"gc-gone\\"'));
    // host-local's GC ran too: only the kept attachment's address is reserved.
    assert.is(h.reservations().length, 1);
    assert.is(h.weft("DEL", { netns: a.path, containerId: "gc-keep", ifname: "eth0" }, conf).status, 0);
    assert.is(h.weft("DEL", { netns: b.path, containerId: "gc-gone", ifname: "eth0" }, conf).status, 0);
    assert.not.ok(natRules().includes(`name: \\"${h.name}\\"`));
  }),
);

test(
  "GC without any attachment list removes nothing (as host-local, portmap and flannel)",
  withHarness((h) => {
    const conf = h.conf({ cniVersion: "1.1.0", subnets: [net(9)], extra: { ipMasq: true } });
    const a = h.pod();
    const call = { netns: a.path, containerId: "gc-nolist", ifname: "eth0" };
    assert.is(h.weft("ADD", call, conf).status, 0);
    const gc = h.weft("GC", {}, conf);
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    assert.ok(natRules().includes('id: \\"gc-nolist\\"'));
    assert.is(h.reservations().length, 1);
    assert.is(h.weft("DEL", call, conf).status, 0);
    assert.not.ok(natRules().includes(`name: \\"${h.name}\\"`));
  }),
);

test(
  "STATUS (1.1.0) succeeds when iptables and IPAM are usable",
  withHarness((h) => {
    const r = h.weft(
      "STATUS",
      {},
      h.conf({ cniVersion: "1.1.0", subnets: [net(7)], extra: { ipMasq: true } }),
    );
    assert.is(r.status, 0, r.stdout + r.stderr);
    const old = h.weft("STATUS", {}, h.conf({ cniVersion: "1.0.0", subnets: [net(7)] }));
    assert.is(old.status, 1);
  }),
);

test(
  "MTU: an existing bridge with a larger MTU is lowered to the configured one",
  withHarness((h) => {
    execFileSync("ip", ["link", "add", h.bridge, "mtu", "1500", "type", "bridge"]);
    execFileSync("ip", ["link", "set", h.bridge, "mtu", "1500"]);
    const pod = h.pod();
    const conf = h.conf({ subnets: [net(8)] });
    const call = { netns: pod.path, containerId: "mtu-1", ifname: "eth0" };
    assert.is(h.weft("ADD", call, conf).status, 0);
    assert.is(hostJson<Array<{ mtu: number }>>(["link", "show", "dev", h.bridge])[0]!.mtu, 1450);
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test(
  "two IPv4 ranges: the pod gets one address of each, the bridge both gateways, and a second pod fits too",
  withHarness((h) => {
    const conf = {
      ...h.conf({ subnets: [] }),
      ipam: {
        type: "host-local",
        dataDir: h.dataDir,
        ranges: [[{ subnet: net(0) }], [{ subnet: net(9) }]],
      },
    };
    for (const id of ["two-a", "two-b"]) {
      const pod = h.pod();
      const r = h.weft("ADD", { netns: pod.path, containerId: id, ifname: "eth0" }, conf);
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.is((r.json!.ips as unknown[]).length, 2);
    }
    const gws = hostJson<Array<{ addr_info: Array<{ local: string; family: string }> }>>([
      "addr",
      "show",
      "dev",
      h.bridge,
    ])[0]!
      .addr_info.filter((a) => a.family === "inet")
      .map((a) => a.local)
      .sort();
    assert.equal(gws, [net(0), net(9)].map((s) => s.replace(/0\/24$/, "1")).sort());
  }),
);

test(
  "ipMasq with the nftables backend: one masquerade rule per address in inet cni_plugins_masquerade, removed on DEL",
  withHarness((h) => {
    const pod = h.pod();
    const conf = h.conf({ subnets: [net(1)], extra: { ipMasq: true, ipMasqBackend: "nftables" } });
    const id = `nftmasq${process.pid}`;
    const call = { netns: pod.path, containerId: id, ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const ip = (r.json!.ips as Array<{ address: string }>)[0]!.address.split("/")[0]!;
    const listing = execFileSync("nft", ["list", "chain", "inet", "cni_plugins_masquerade", "masq_checks"], {
      encoding: "utf8",
    });
    const rule = listing.split("\n").find((l) => l.includes(`id: ${id}"`));
    assert.ok(rule, listing);
    assert.match(rule!, `ip saddr ${ip} ip daddr != ${net(1)} masquerade comment`);
    assert.match(rule!, `, net: ${h.name}, if: eth0, id: ${id}"`);
    assert.not.ok(natRules().includes(`id: \\"${id}\\"`), "no iptables rules with the nft backend");
    assert.is(h.weft("DEL", call, conf).status, 0);
    const after = execFileSync("nft", ["list", "chain", "inet", "cni_plugins_masquerade", "masq_checks"], {
      encoding: "utf8",
    });
    assert.not.ok(after.includes(`id: ${id}"`));
  }),
);

test.run();
