/**
 * portmap's failed ADDs and hostile input, each in a private network namespace (its own nat tables and nft
 * ruleset, so "nothing left" is checked on the whole table): a failed ADD leaves no container chain, entry
 * rule or nft rule in either family, and a DEL succeeds whenever nothing it could remove exists, whatever
 * the mappings say. Both weft's and the reference's (Debian v1.1.1) executables act on the same tables.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { recordPath } from "../../plugins/portmap/record.js";
import { fastpathEnvIn } from "../helpers/fastpath.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type PluginRun, pluginRunOf } from "../helpers/plugin.js";
import { installWeft, REFERENCE_DIR } from "../helpers/podpath.js";

assertRoot();

const NET = "pmfail";
const TCP = { hostPort: 8080, containerPort: 80, protocol: "tcp" };
const V4 = { address: "10.79.0.2/24" };
const V6 = { address: "fd79::2/64" };

/** Runs a portmap executable inside `ns`, as a runtime would run it there. Never hangs the suite. */
function portmapIn(
  ns: TestNetns,
  exe: string,
  command: string,
  containerId: string,
  conf: object,
): PluginRun {
  const env = {
    ...(process.env as Record<string, string>),
    ...fastpathEnvIn(ns.name),
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: ns.path,
    CNI_NETNS_OVERRIDE: "1",
    CNI_IFNAME: "eth0",
    CNI_PATH: REFERENCE_DIR,
  };
  const r = spawnSync("ip", ["netns", "exec", ns.name, exe], {
    env,
    input: JSON.stringify(conf),
    encoding: "utf8",
    timeout: 30_000,
  });
  return pluginRunOf(r);
}

function assertCniError(r: PluginRun, code: number, msg: RegExp): void {
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, code, r.stdout);
  assert.match(String(r.json?.msg), msg);
  assert.not.match(r.stdout + r.stderr, /TypeError|ReferenceError|Invalid socket address|\n\s+at /);
}

function conf(ips: object[], mappings: object[], extra: Record<string, unknown> = {}): object {
  return {
    cniVersion: "1.0.0",
    name: NET,
    type: "portmap",
    runtimeConfig: { portMappings: mappings },
    prevResult: { cniVersion: "1.0.0", ips },
    ...extra,
  };
}

/** A private netns with weft's portmap (`exe`); `ref` is the reference's. */
function withNs(fn: (ns: TestNetns, exe: string, ref: string) => void): () => void {
  return () => {
    const ns = TestNetns.create("wpmf");
    const bin = mkdtempSync(join(tmpdir(), "weft-pmf-"));
    try {
      installWeft(bin, "portmap");
      fn(ns, join(bin, "portmap"), join(REFERENCE_DIR, "portmap"));
    } finally {
      ns.delete();
      rmSync(bin, { recursive: true, force: true });
    }
  };
}

/** Whether weft's record of what the ADD installed (plugins/portmap/record.ts) exists for `id`. */
const hasRecord = (id: string) => existsSync(recordPath({ network: NET, containerId: id, ifname: "eth0" }));

/** The lines of both nat tables that belong to container `id` (its chain, its entry rules). */
function containerNat(ns: TestNetns, id: string): string[] {
  const chain = dnatChainName(NET, id);
  return ["iptables-save", "ip6tables-save"].flatMap((tool) =>
    ns
      .exec([tool, "-t", "nat"])
      .split("\n")
      .filter((l) => l.includes(chain) || l.includes(`id: \\"${id}\\"`)),
  );
}

const nftRuleset = (ns: TestNetns) => ns.exec(["nft", "list", "ruleset"]);

const t = suite("portmap: failed ADDs leave nothing; DEL always succeeds when nothing is left to remove");

t(
  "hostIP weft cannot parse (leading zero, as Go's net.ParseIP): ADD refuses it and installs nothing; every DEL succeeds",
  withNs((ns, exe) => {
    const mappings = [
      { ...TCP, hostIP: "01.2.3.4" },
      { ...TCP, hostPort: 8081 },
    ];
    for (const ips of [[V4], [V4, V6]]) {
      const add = portmapIn(ns, exe, "ADD", "z1", conf(ips, mappings));
      assertCniError(add, 7, /Invalid host IP: 01\.2\.3\.4/);
      assert.equal(containerNat(ns, "z1"), []);
      assert.not.ok(hasRecord("z1"), "a refused ADD leaves no record");
      // The runtime's DEL for the failed sandbox: with the mappings, with or without a (cached) result.
      for (const c of [conf(ips, mappings), conf([], mappings, { prevResult: undefined })]) {
        const del = portmapIn(ns, exe, "DEL", "z1", c);
        assert.is(del.status, 0, del.stdout + del.stderr);
        assert.is(del.stdout, "");
      }
    }
  }),
);

t(
  "hostIP with a leading zero on a pod the reference set up (it ignores that mapping): weft's DEL removes its chain",
  withNs((ns, exe, ref) => {
    const mappings = [
      { ...TCP, hostIP: "01.2.3.4" },
      { ...TCP, hostPort: 8081 },
    ];
    const c = conf([V4], mappings);
    const add = portmapIn(ns, ref, "ADD", "z2", c);
    assert.is(add.status, 0, add.stdout + add.stderr);
    assert.ok(containerNat(ns, "z2").length > 0, "the reference installed the pod's chain");
    const del = portmapIn(ns, exe, "DEL", "z2", c);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(containerNat(ns, "z2"), []);
    const again = portmapIn(ns, exe, "DEL", "z2", c);
    assert.is(again.status, 0, again.stdout + again.stderr);
  }),
);

t(
  "DEL with a config the ADD would refuse (mark bit, backend, malformed prevResult) still removes the pod's rules",
  withNs((ns, exe) => {
    const add = portmapIn(ns, exe, "ADD", "b1", conf([V4, V6], [TCP]));
    assert.is(add.status, 0, add.stdout + add.stderr);
    assert.ok(containerNat(ns, "b1").length > 0);
    const broken = conf([], [TCP, { ...TCP, hostIP: "01.2.3.4" }], {
      markMasqBit: 40,
      backend: "bpf",
      prevResult: { cniVersion: "1.0.0", interfaces: [null], ips: [{ address: 7, interface: 0 }] },
    });
    for (let i = 0; i < 2; i++) {
      const del = portmapIn(ns, exe, "DEL", "b1", broken);
      assert.is(del.status, 0, del.stdout + del.stderr);
      assert.is(del.stdout, "");
      assert.equal(containerNat(ns, "b1"), []);
    }
  }),
);

t(
  "iptables: a condition the kernel refuses in one family (dual-stack pod) fails ADD and leaves neither family's chain",
  withNs((ns, exe) => {
    for (const [key, id] of [
      ["conditionsV4", "s4"],
      ["conditionsV6", "s6"],
    ] as const) {
      const c = conf([V4, V6], [TCP], { [key]: ["-s"] });
      const add = portmapIn(ns, exe, "ADD", id, c);
      assert.is(add.status, 1, add.stdout + add.stderr);
      assert.type(add.json?.code, "number");
      assert.match(String(add.json?.msg), /unable to setup DNAT/);
      assert.equal(containerNat(ns, id), [], `${key}: nothing of the pod in either family`);
      assert.not.ok(hasRecord(id), `${key}: a failed ADD removes its record with its rules`);
      const del = portmapIn(ns, exe, "DEL", id, c);
      assert.is(del.status, 0, del.stdout + del.stderr);
    }
  }),
);

t(
  "nftables: a condition nft refuses (dual-stack pod) fails ADD and leaves the ruleset as it was",
  withNs((ns, exe) => {
    const before = nftRuleset(ns);
    for (const [key, cond] of [
      ["conditionsV4", ["ip", "saddr", "10.0.0.0/99"]],
      ["conditionsV6", ["ip6", "saddr", "fd00::/999"]],
    ] as const) {
      const c = conf([V4, V6], [TCP], { backend: "nftables", [key]: cond });
      const add = portmapIn(ns, exe, "ADD", "n1", c);
      assert.is(add.status, 1, add.stdout + add.stderr);
      assert.type(add.json?.code, "number");
      assert.is(nftRuleset(ns), before, `${key}: nothing installed`);
      const del = portmapIn(ns, exe, "DEL", "n1", c);
      assert.is(del.status, 0, del.stdout + del.stderr);
    }
  }),
);

t(
  "over-long container ID: iptables works (the comment is cut as the reference cuts it); nftables refuses it clearly and installs nothing",
  withNs((ns, exe) => {
    const id = "a".repeat(300);
    const ipt = conf([V4, V6], [TCP]);
    const add = portmapIn(ns, exe, "ADD", id, ipt);
    assert.is(add.status, 0, add.stdout + add.stderr);
    assert.ok(containerNat(ns, id).length > 0);
    const del = portmapIn(ns, exe, "DEL", id, ipt);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(containerNat(ns, id), []);

    const before = nftRuleset(ns);
    const nft = conf([V4, V6], [TCP], { backend: "nftables" });
    const bad = portmapIn(ns, exe, "ADD", id, nft);
    assertCniError(bad, 4, /CNI_CONTAINERID is too long .*300 bytes.*128/);
    assert.is(nftRuleset(ns), before);
    const nftDel = portmapIn(ns, exe, "DEL", id, nft);
    assert.is(nftDel.status, 0, nftDel.stdout + nftDel.stderr);
    // No record can be written for it (the file name would be too long): its DEL reads, nothing stays.
    assert.not.ok(existsSync(dirname(recordPath({ network: NET, containerId: id, ifname: "eth0" }))));
  }),
);

t.run();
