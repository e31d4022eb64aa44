/**
 * portmap on a real kernel, through the flannel conflist and the libcni client (test/helpers/podpath):
 * flannel (weft) -> bridge + host-local (Debian's reference plugins, so only portmap varies) -> portmap
 * (weft's, or the reference's for the interop cases), with CAP_ARGS port mappings, and real TCP/UDP
 * traffic from an outside client, the node itself, 127.0.0.1, another pod and the pod itself.
 *
 * Shared state: the CNI-HOSTPORT-* chains and the nft cni_hostport tables may be in use by concurrent
 * tests, so they are never removed; "as before" is checked on this test's own chains, rules and IDs.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { RECORD_DIR, recordPath } from "../../plugins/portmap/record.js";
import { fastpathEnvIn, noteFallbacks } from "../helpers/fastpath.js";
import {
  eventually,
  natLinesOf,
  nftRulesOf,
  Outside,
  randomPort,
  Servers,
  sh,
  tcpOnce,
  udpOnce,
} from "../helpers/hostport.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { runPlugin } from "../helpers/plugin.js";
import { installReference, installWeft, type Pod, PodPath } from "../helpers/podpath.js";
import { spawnAsync } from "../helpers/spawn-async.js";

type Backend = "iptables" | "nftables";

// ---- helpers ------------------------------------------------------------------------------------

/** iptables-save output without its timestamped comment lines. */
function stripComments(saved: string): string {
  return saved
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");
}

function countLines(tool: string, line: string): number {
  return sh(tool, ["-t", "nat"])
    .split("\n")
    .filter((l) => l === line).length;
}

/**
 * A PATH shim in `dir` that logs which of `tools` a plugin runs, then runs them. The env runs the plugin
 * without weftd (WEFT_CNI_SOCKET=off): a served call runs the tools weftd finds on its own PATH, so the
 * shim would see none of them. `calls()` returns the tools run since the last call, in order.
 */
function toolShim(dir: string, tools: string[]): { env: Record<string, string>; calls: () => string[] } {
  execFileSync("mkdir", ["-p", join(dir, "shim")]);
  const log = join(dir, "calls.log");
  for (const tool of tools) {
    writeFileSync(
      join(dir, "shim", tool),
      `#!/bin/sh\necho ${tool} >> ${log}\nexec /usr/sbin/${tool} "$@"\n`,
      {
        mode: 0o755,
      },
    );
  }
  return {
    env: { PATH: `${join(dir, "shim")}:${process.env.PATH}`, WEFT_CNI_SOCKET: "off" },
    calls: () => {
      const text = existsSync(log) ? readFileSync(log, "utf8") : "";
      rmSync(log, { force: true });
      return text.split("\n").filter(Boolean);
    },
  };
}

const TABLE_TOOLS = ["iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore"];

/** Applies `lines` to the nat table of `family` in the host namespace, as another program would. */
function natRestore(family: 4 | 6, lines: string[]): void {
  execFileSync(family === 4 ? "iptables-restore" : "ip6tables-restore", ["--noflush", "-w"], {
    input: `*nat\n${lines.join("\n")}\nCOMMIT\n`,
  });
}

/** The host nat table's rules jumping to `chain` (iptables-save lines). */
function jumpsTo(family: 4 | 6, chain: string): string[] {
  return sh(family === 4 ? "iptables-save" : "ip6tables-save", ["-t", "nat"])
    .split("\n")
    .filter((l) => l.startsWith("-A ") && l.endsWith(` -j ${chain}`));
}

/** Puts weft's or the reference's portmap into the list's CNI_PATH. */
function usePortmap(pp: PodPath, which: "weft" | "reference"): void {
  rmSync(join(pp.cniPath, "portmap"), { force: true });
  if (which === "weft") installWeft(pp.cniPath, "portmap");
  else installReference(pp.cniPath, "portmap");
}

function portmapEntry(pp: PodPath): Record<string, unknown> {
  return pp.list.plugins.find((p) => p.type === "portmap")!;
}

/** Runs weft's portmap directly (not through the list) for `pod` with `extra` config keys. */
function weftPortmap(pp: PodPath, command: string, pod: Pod, extra: Record<string, unknown> = {}) {
  const conf = { ...portmapEntry(pp), name: pp.netName, cniVersion: pp.list.cniVersion, ...extra };
  return runPlugin(
    join(pp.cniPath, "portmap"),
    { command, containerId: pod.containerId, netns: pod.netns.path, ifname: pod.ifname, path: pp.cniPath },
    conf,
  );
}

/** Removes whatever portmap state the pods may still have (weft's DEL needs no mappings). */
function scrub(pp: PodPath): void {
  usePortmap(pp, "weft");
  for (const pod of pp.pods) weftPortmap(pp, "DEL", pod);
}

async function newPodPath(backend: Backend, dualStack = false): Promise<PodPath> {
  const pp = await PodPath.create({
    cniVersion: "1.0.0",
    delegates: "reference",
    dualStack,
    edit: (list) => {
      const pm = list.plugins.find((p) => p.type === "portmap")!;
      if (backend === "nftables") pm.backend = "nftables";
    },
  });
  usePortmap(pp, "weft");
  return pp;
}

function withoutEmptyDns(doc: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!doc || (doc.dns && Object.keys(doc.dns as object).length > 0)) return doc;
  const { dns: _dns, ...rest } = doc;
  return rest;
}

function podIp(result: Record<string, unknown>, family: 4 | 6): string {
  const ips = result.ips as Array<{ address: string }>;
  const ip = ips.find((i) => (family === 4) === !i.address.includes(":"));
  return ip!.address.split("/")[0]!;
}

assertRoot();

// ---- traffic, per backend --------------------------------------------------------------------------

for (const backend of ["iptables", "nftables"] as const) {
  const t = suite(`portmap traffic (${backend})`);

  t(
    "TCP and UDP reach the pod via the node address, localhost, another pod and itself; DEL removes all",
    async () => {
      const pp = await newPodPath(backend);
      const outside = new Outside();
      const servers: Servers[] = [];
      try {
        const a = pp.pod();
        const b = pp.pod();
        const tcp = randomPort();
        const udp = tcp + 1;
        const portMappings = [
          { hostPort: tcp, containerPort: 80, protocol: "tcp" },
          { hostPort: udp, containerPort: 53, protocol: "udp" },
        ];
        assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
        const ra = pp.addOk(a, { capArgs: { portMappings } });
        pp.addOk(b);
        servers.push(new Servers(a.netns, "podA"));
        const node = outside.nodeIp;

        assert.is(
          eventually(() => tcpOnce(outside.ns, node, tcp)),
          "podA",
          "outside -> node:tcp",
        );
        assert.is(
          eventually(() => udpOnce(outside.ns, node, udp)),
          "podA",
          "outside -> node:udp",
        );
        assert.is(
          eventually(() => tcpOnce(undefined, node, tcp)),
          "podA",
          "node -> own address",
        );
        assert.is(
          eventually(() => tcpOnce(undefined, "127.0.0.1", tcp)),
          "podA",
          "node -> 127.0.0.1",
        );
        assert.is(
          eventually(() => udpOnce(undefined, "127.0.0.1", udp)),
          "podA",
          "node -> 127.0.0.1 udp",
        );
        assert.is(
          eventually(() => tcpOnce(b.netns, node, tcp)),
          "podA",
          "other pod -> node",
        );
        assert.is(
          eventually(() => tcpOnce(a.netns, node, tcp)),
          "podA",
          "pod -> itself via node (hairpin)",
        );

        if (backend === "iptables") {
          const chain = dnatChainName(pp.netName, a.containerId);
          assert.ok(natLinesOf(pp.netName, [a.containerId]).some((l) => l === `:${chain} - [0:0]`));
          // Shared entry rules exist once, whoever else installed them.
          assert.is(
            countLines("iptables-save", "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
            1,
          );
        } else {
          assert.is(nftRulesOf([a.containerId]).length, 2 + 2);
        }
        const bridgeLocalnet = sh("cat", [`/proc/sys/net/ipv4/conf/${pp.bridge}/route_localnet`]).trim();
        assert.is(bridgeLocalnet, "1");
        assert.ok(podIp(ra, 4));

        // CHECK through the list (flannel -> delegates, then portmap with prevResult).
        const check = pp.check(a, { capArgs: { portMappings } });
        assert.is(check.status, 0, check.stdout + check.stderr);

        // DEL without portMappings (the runtime may omit them): everything goes anyway.
        const del = pp.del(a);
        assert.is(del.status, 0, del.stdout + del.stderr);
        assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
        assert.equal(nftRulesOf([a.containerId]), []);
        assert.is(tcpOnce(outside.ns, node, tcp), undefined, "nothing answers after DEL");
        assert.is(udpOnce(outside.ns, node, udp), undefined, "nothing answers UDP after DEL");
        assert.is(tcpOnce(undefined, "127.0.0.1", tcp), undefined);
      } finally {
        for (const s of servers) s.stop();
        scrub(pp);
        pp.cleanup();
        outside.delete();
      }
    },
  );

  t("a repeated ADD adds nothing twice; CHECK fails once a rule is gone", async () => {
    const pp = await newPodPath(backend);
    try {
      const a = pp.pod();
      const portMappings = [{ hostPort: randomPort(), containerPort: 80, protocol: "tcp" }];
      const prevResult = pp.addOk(a);
      const conf = { prevResult, runtimeConfig: { portMappings } };
      for (let i = 0; i < 2; i++) {
        const r = weftPortmap(pp, "ADD", a, conf);
        assert.is(r.status, 0, r.stdout + r.stderr);
        // Debian's v1.1.1 plugins print an empty "dns": {} in 1.0.0 results, weft's skel does not (as
        // libcni >= 1.2): the same result.
        assert.equal(withoutEmptyDns(r.json), withoutEmptyDns(prevResult), "ADD passes prevResult through");
      }
      const installed =
        backend === "iptables" ? natLinesOf(pp.netName, [a.containerId]) : nftRulesOf([a.containerId]);
      assert.is(installed.length, backend === "iptables" ? 1 + 3 + 1 : 1 + 2);
      assert.is(weftPortmap(pp, "CHECK", a, conf).status, 0);

      if (backend === "iptables") {
        const chain = dnatChainName(pp.netName, a.containerId);
        sh("iptables", ["-t", "nat", "-D", chain, "3"]);
      } else {
        const rules = JSON.parse(sh("nft", ["-j", "list", "chain", "ip", "cni_hostport", "hostports"])) as {
          nftables: Array<{ rule?: { handle: number; comment?: string } }>;
        };
        const mine = rules.nftables.find((o) => o.rule?.comment === a.containerId)!.rule!;
        sh("nft", ["delete", "rule", "ip", "cni_hostport", "hostports", "handle", String(mine.handle)]);
      }
      const bad = weftPortmap(pp, "CHECK", a, conf);
      assert.is(bad.status, 1);
      const msg = String(bad.json?.msg);
      assert.match(
        msg,
        backend === "iptables"
          ? /could not check ipv4 dnat: rule .* not found in table nat/
          : /missing hostport rules in "hostports" chain/,
      );

      assert.is(weftPortmap(pp, "DEL", a).status, 0);
      assert.equal(
        backend === "iptables" ? natLinesOf(pp.netName, [a.containerId]) : nftRulesOf([a.containerId]),
        [],
      );
    } finally {
      scrub(pp);
      pp.cleanup();
    }
  });

  t(
    "UDP: a new pod on the same hostPort gets the next datagram of an existing flow (conntrack flush)",
    async () => {
      const pp = await newPodPath(backend);
      const outside = new Outside();
      const servers: Servers[] = [];
      try {
        const udp = randomPort();
        const sport = randomPort() + 20000;
        const portMappings = [{ hostPort: udp, containerPort: 53, protocol: "udp" }];
        const a = pp.pod();
        pp.addOk(a, { capArgs: { portMappings } });
        servers.push(new Servers(a.netns, "podA"));
        assert.is(
          eventually(() => udpOnce(outside.ns, outside.nodeIp, udp, sport)),
          "podA",
        );
        assert.is(pp.del(a, { capArgs: { portMappings } }).status, 0);

        const b = pp.pod();
        pp.addOk(b, { capArgs: { portMappings } });
        servers.push(new Servers(b.netns, "podB"));
        assert.is(
          eventually(() => udpOnce(outside.ns, outside.nodeIp, udp, sport)),
          "podB",
        );
      } finally {
        for (const s of servers) s.stop();
        scrub(pp);
        pp.cleanup();
        outside.delete();
      }
    },
  );

  t("dual stack: TCP over IPv6 to the node's v6 address reaches the pod", async () => {
    const pp = await newPodPath(backend, true);
    const outside = new Outside();
    const servers: Servers[] = [];
    try {
      const a = pp.pod();
      const tcp = randomPort();
      const portMappings = [{ hostPort: tcp, containerPort: 80, protocol: "tcp" }];
      const r = pp.addOk(a, { capArgs: { portMappings } });
      assert.ok(podIp(r, 6));
      servers.push(new Servers(a.netns, "podA"));
      assert.is(
        eventually(() => tcpOnce(outside.ns, outside.nodeIp6, tcp)),
        "podA",
        "outside -> node v6",
      );
      assert.is(
        eventually(() => tcpOnce(outside.ns, outside.nodeIp, tcp)),
        "podA",
        "outside -> node v4",
      );
      assert.is(pp.del(a).status, 0);
      assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
      assert.equal(nftRulesOf([a.containerId]), []);
      assert.is(tcpOnce(outside.ns, outside.nodeIp6, tcp), undefined);
    } finally {
      for (const s of servers) s.stop();
      scrub(pp);
      pp.cleanup();
      outside.delete();
    }
  });

  t("GC removes the rules of attachments that are no longer valid, only those", async () => {
    const pp = await newPodPath(backend);
    try {
      const a = pp.pod();
      const b = pp.pod();
      for (const pod of [a, b]) {
        const prevResult = pp.addOk(pod);
        const portMappings = [{ hostPort: randomPort(), containerPort: 80, protocol: "tcp" }];
        assert.is(weftPortmap(pp, "ADD", pod, { prevResult, runtimeConfig: { portMappings } }).status, 0);
      }
      const gc = weftPortmap(pp, "GC", a, {
        cniVersion: "1.1.0",
        "cni.dev/valid-attachments": [{ containerID: b.containerId, ifname: "eth0" }],
      });
      assert.is(gc.status, 0, gc.stdout + gc.stderr);
      const remaining = (id: string) =>
        backend === "iptables" ? natLinesOf(pp.netName, [id]) : nftRulesOf([id]);
      assert.equal(remaining(a.containerId), []);
      assert.ok(remaining(b.containerId).length > 0);
    } finally {
      scrub(pp);
      pp.cleanup();
    }
  });

  t.run();
}

// ---- interop with the reference portmap (iptables) --------------------------------------------------

const interop = suite("portmap interop with the reference (v1.1.1)");

/** A tcp mapping of `tcp` to port 80 and a udp one of tcp + 1 to port 53. */
const tcpThenUdp = (tcp: number) => [
  { hostPort: tcp, containerPort: 80, protocol: "tcp" },
  { hostPort: tcp + 1, containerPort: 53, protocol: "udp" },
];

interop("rules of the reference's ADD are removed by weft's DEL (even without mappings)", async () => {
  const pp = await newPodPath("iptables");
  const outside = new Outside();
  const servers: Servers[] = [];
  try {
    usePortmap(pp, "reference");
    const a = pp.pod();
    const tcp = randomPort();
    const portMappings = tcpThenUdp(tcp);
    pp.addOk(a, { capArgs: { portMappings } });
    servers.push(new Servers(a.netns, "podA"));
    assert.is(
      eventually(() => tcpOnce(outside.ns, outside.nodeIp, tcp)),
      "podA",
    );
    assert.ok(natLinesOf(pp.netName, [a.containerId]).length > 0);

    usePortmap(pp, "weft");
    // CHECK by weft accepts the reference's rules (same rules, compared as iptables -C does).
    const prevResult = JSON.parse(
      sh("cat", [join(pp.cacheDir, "results", `${pp.netName}-${a.containerId}-${a.ifname}`)]),
    ).result;
    assert.is(weftPortmap(pp, "CHECK", a, { prevResult, runtimeConfig: { portMappings } }).status, 0);
    assert.is(pp.del(a).status, 0);
    assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
    assert.is(tcpOnce(outside.ns, outside.nodeIp, tcp), undefined);
  } finally {
    for (const s of servers) s.stop();
    scrub(pp);
    pp.cleanup();
    outside.delete();
  }
});

interop("rules of weft's ADD are removed by the reference's DEL", async () => {
  const pp = await newPodPath("iptables");
  try {
    const a = pp.pod();
    const portMappings = [
      { hostPort: randomPort(), containerPort: 80, protocol: "tcp" },
      { hostPort: randomPort(), containerPort: 53, protocol: "udp", hostIP: "0.0.0.0" },
    ];
    pp.addOk(a, { capArgs: { portMappings } });
    assert.is(natLinesOf(pp.netName, [a.containerId]).length, 1 + 2 * 3 + 2);
    usePortmap(pp, "reference");
    // The reference's DEL returns early without mappings, so the runtime must send them.
    const del = pp.del(a, { capArgs: { portMappings } });
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
  } finally {
    scrub(pp);
    pp.cleanup();
  }
});

interop.run();

// ---- DEL below cniVersion 0.4.0: no prevResult, the ADD's record says what to remove ---------------------

/**
 * libcni sends a prevResult on DEL only from 0.4.0, and kube-flannel's list is 0.3.1: the DEL of a pod
 * with hostPorts knows its mappings (CAP_ARGS) but not its addresses. The ADD's record (record.ts) holds
 * the teardown of what it installed, per family, so that DEL reads no nat table.
 */
const legacy = suite("portmap DEL through a 0.3.1 list (no prevResult): the ADD's record, no table read");

/**
 * Runs `body` on a PodPath of the shipped 0.3.1 list with weft's portmap and a shim logging the table
 * tools; removes the pods' rules and the PodPath whatever happens.
 */
async function withLegacyPodPath(
  dualStack: boolean,
  body: (x: { pp: PodPath; shim: ReturnType<typeof toolShim> }) => Promise<void> | void,
): Promise<void> {
  const pp = await PodPath.create({ delegates: "reference", dualStack });
  try {
    usePortmap(pp, "weft");
    assert.is(pp.list.cniVersion, "0.3.1");
    await body({ pp, shim: toolShim(join(pp.root, "tools"), TABLE_TOOLS) });
  } finally {
    scrub(pp);
    pp.cleanup();
  }
}

const recordOf = (pp: PodPath, pod: Pod) =>
  recordPath({ network: pp.netName, containerId: pod.containerId, ifname: pod.ifname });

for (const dualStack of [false, true]) {
  legacy(
    `${dualStack ? "dual stack" : "v4"}: DEL removes the chain and entry rules with one iptables-restore per family and no iptables-save`,
    async () => {
      await withLegacyPodPath(dualStack, async ({ pp, shim }) => {
        const a = pp.pod();
        const tcp = randomPort();
        const portMappings = tcpThenUdp(tcp);
        pp.addOk(a, { capArgs: { portMappings } });
        const chain = dnatChainName(pp.netName, a.containerId);
        const families = dualStack ? ([4, 6] as const) : ([4] as const);
        for (const f of families) assert.is(jumpsTo(f, chain).length, 2, `IPv${f} entry rules`);
        const record = JSON.parse(readFileSync(recordOf(pp, a), "utf8")) as {
          installed: string;
          teardown?: { backend: string; families: Record<string, { udp: number[] }> };
        };

        shim.calls();
        // As kubelet's runtime does: the mappings on DEL too (libcni's CAP_ARGS), no prevResult at 0.3.1.
        const del = pp.del(a, { capArgs: { portMappings }, env: shim.env });
        assert.is(del.status, 0, del.stdout + del.stderr);
        assert.equal(
          shim.calls().sort(),
          dualStack ? ["ip6tables-restore", "iptables-restore"] : ["iptables-restore"],
          "one transaction per family of the pod, nothing read",
        );
        // What the ADD recorded: per family of the pod, the teardown and the UDP port to flush.
        assert.is(record.installed, "rules");
        assert.is(record.teardown?.backend, "iptables");
        assert.equal(Object.keys(record.teardown?.families ?? {}), families.map(String));
        assert.equal(record.teardown?.families["4"]?.udp, [tcp + 1]);
        assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
        assert.not.ok(existsSync(recordOf(pp, a)), "the DEL removed the record");
      });
    },
  );
}

legacy(
  "rules changed by someone else since the ADD: DEL reads that family only, and leaves nothing",
  async () => {
    await withLegacyPodPath(true, async ({ pp, shim }) => {
      const portMappings = () => [{ hostPort: randomPort(), containerPort: 80, protocol: "tcp" }];
      const pods = [pp.pod(), pp.pod(), pp.pod()];
      for (const pod of pods) pp.addOk(pod, { capArgs: { portMappings: portMappings() } });
      const [a, b, c] = pods.map((pod) => ({ pod, chain: dnatChainName(pp.netName, pod.containerId) }));
      const del = (pod: Pod) => {
        shim.calls();
        const r = pp.del(pod, { env: shim.env });
        assert.is(r.status, 0, r.stdout + r.stderr);
        assert.equal(natLinesOf(pp.netName, [pod.containerId]), [], "nothing of the pod is left");
        return shim.calls();
      };

      // a: its IPv6 entry rule deleted (the chain stays, unreferenced): `-D` fails, the v6 table is read.
      natRestore(
        6,
        jumpsTo(6, a!.chain).map((l) => l.replace(/^-A /, "-D ")),
      );
      let calls = del(a!.pod);
      assert.ok(calls.includes("ip6tables-save"), calls.join(" "));
      assert.not.ok(calls.includes("iptables-save"), "the IPv4 rules went as recorded");

      // b: its IPv4 chain and entry rule removed altogether: nothing to find, DEL succeeds.
      natRestore(4, [
        ...jumpsTo(4, b!.chain).map((l) => l.replace(/^-A /, "-D ")),
        `-F ${b!.chain}`,
        `-X ${b!.chain}`,
      ]);
      calls = del(b!.pod);
      assert.ok(calls.includes("iptables-save"), calls.join(" "));
      assert.not.ok(calls.includes("ip6tables-save"));

      // c: another rule jumping to its IPv4 chain: `-X` fails, the read finds and removes that rule too.
      natRestore(4, [`-A OUTPUT -p tcp --dport ${randomPort()} -j ${c!.chain}`]);
      assert.is(jumpsTo(4, c!.chain).length, 2);
      calls = del(c!.pod);
      assert.ok(calls.includes("iptables-save"), calls.join(" "));
      assert.equal(jumpsTo(4, c!.chain), []);
    });
  },
);

legacy(
  "a record of the previous version (rules, no teardown) reads both tables and removes everything",
  async () => {
    await withLegacyPodPath(false, async ({ pp, shim }) => {
      const a = pp.pod();
      pp.addOk(a, {
        capArgs: { portMappings: [{ hostPort: randomPort(), containerPort: 80, protocol: "tcp" }] },
      });
      const path = recordOf(pp, a);
      const { teardown: _teardown, ...previous } = JSON.parse(readFileSync(path, "utf8")) as Record<
        string,
        unknown
      >;
      assert.ok(_teardown);
      writeFileSync(path, `${JSON.stringify(previous)}\n`);
      shim.calls();
      const del = pp.del(a, { env: shim.env });
      assert.is(del.status, 0, del.stdout + del.stderr);
      const calls = shim.calls();
      assert.ok(calls.includes("iptables-save") && calls.includes("ip6tables-save"), calls.join(" "));
      assert.equal(natLinesOf(pp.netName, [a.containerId]), []);
      assert.not.ok(existsSync(path));
    });
  },
);

legacy.run();

// ---- in a private network namespace (its own, empty nat table) ---------------------------------------

/** Runs weft's portmap inside `ns` (so iptables/nft act on that namespace's tables), asynchronously. */
async function portmapIn(
  ns: TestNetns,
  exe: string,
  command: string,
  containerId: string,
  conf: object,
  extraEnv: Record<string, string> = {},
): Promise<{ status: number | null; out: string }> {
  const env = {
    ...(process.env as Record<string, string>),
    ...fastpathEnvIn(ns.name),
    ...extraEnv,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: ns.path,
    CNI_NETNS_OVERRIDE: "1",
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
  };
  const r = await spawnAsync("ip", ["netns", "exec", ns.name, exe], { env, input: JSON.stringify(conf) });
  const out = r.stdout + r.stderr;
  noteFallbacks(out);
  return { status: r.status, out };
}

const race = suite("portmap in a private netns (own nat table): races, fast paths, bad input");

race(
  "concurrent ADDs on an empty nat table all succeed; shared chains once; concurrent DELs leave only them",
  async () => {
    const ns = TestNetns.create("wpmr");
    const bin = join("/tmp", uniqueName("wpmbin"));
    try {
      execFileSync("mkdir", ["-p", bin]);
      installWeft(bin, "portmap");
      const exe = join(bin, "portmap");
      const before = sh("ip", ["netns", "exec", ns.name, "iptables-save", "-t", "nat"]);
      assert.not.match(before, /CNI-HOSTPORT/);
      const ids = ["c1", "c2", "c3", "c4"];
      const conf = (i: number) => ({
        cniVersion: "1.0.0",
        name: "racenet",
        type: "portmap",
        runtimeConfig: { portMappings: [{ hostPort: 8000 + i, containerPort: 80, protocol: "tcp" }] },
        prevResult: { cniVersion: "1.0.0", ips: [{ address: `10.77.0.${10 + i}/24` }] },
      });
      const adds = await Promise.all(ids.map((id, i) => portmapIn(ns, exe, "ADD", id, conf(i))));
      for (const r of adds) assert.is(r.status, 0, r.out);
      const saved = sh("ip", ["netns", "exec", ns.name, "iptables-save", "-t", "nat"]).split("\n");
      for (const line of [
        ":CNI-HOSTPORT-DNAT - [0:0]",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
      ]) {
        assert.is(saved.filter((l) => l === line).length, 1, line);
      }
      for (const id of ids) {
        const chain = dnatChainName("racenet", id);
        assert.is(saved.filter((l) => l.startsWith(`-A ${chain} `)).length, 3, chain);
        assert.is(
          saved.filter((l) => l.startsWith("-A CNI-HOSTPORT-DNAT ") && l.endsWith(`-j ${chain}`)).length,
          1,
        );
      }

      const dels = await Promise.all(
        ids.map((id) =>
          portmapIn(ns, exe, "DEL", id, { cniVersion: "1.0.0", name: "racenet", type: "portmap" }),
        ),
      );
      for (const r of dels) assert.is(r.status, 0, r.out);
      const after = sh("ip", ["netns", "exec", ns.name, "iptables-save", "-t", "nat"]);
      assert.not.match(after, /CNI-DN-/);
      assert.is(after.split("\n").filter((l) => l.startsWith("-A CNI-HOSTPORT-DNAT")).length, 0);
    } finally {
      ns.delete();
      rmSync(bin, { recursive: true, force: true });
    }
  },
);

race(
  "steady state: ADD and DEL (with the ADD's mappings) skip the table read; drift falls back to it",
  async () => {
    const ns = TestNetns.create("wpmu");
    const dir = join("/tmp", uniqueName("wpmbin"));
    try {
      execFileSync("mkdir", ["-p", dir]);
      installWeft(dir, "portmap");
      const exe = join(dir, "portmap");
      const { env, calls } = toolShim(dir, TABLE_TOOLS);
      const conf = (id: number, hostPort = 9000 + id) => ({
        cniVersion: "1.0.0",
        name: "fastnet",
        type: "portmap",
        runtimeConfig: { portMappings: [{ hostPort, containerPort: 80, protocol: "udp" }] },
        prevResult: { cniVersion: "1.0.0", ips: [{ address: `10.78.0.${10 + id}/24` }] },
      });
      const nat = () => sh("ip", ["netns", "exec", ns.name, "iptables-save", "-t", "nat"]).split("\n");
      const ok = async (cmd: string, id: number, c: object) => {
        const r = await portmapIn(ns, exe, cmd, `c${id}`, c, env);
        assert.is(r.status, 0, r.out);
      };

      await ok("ADD", 1, conf(1)); // empty table: the unread transaction fails, then read + plan
      assert.equal(calls(), ["iptables-restore", "iptables-save", "iptables-restore"]);
      await ok("ADD", 2, conf(2)); // steady state: one transaction
      assert.equal(calls(), ["iptables-restore"]);
      await ok("ADD", 2, conf(2)); // repeated ADD: -N fails, read + plan replaces
      assert.equal(calls(), ["iptables-restore", "iptables-save", "iptables-restore"]);
      assert.is(nat().filter((l) => l.endsWith(`-j ${dnatChainName("fastnet", "c2")}`)).length, 1);

      await ok("DEL", 2, conf(2)); // the ADD's record (or mappings and prevResult): one transaction
      assert.equal(calls(), ["iptables-restore"]);
      assert.not.ok(nat().some((l) => l.includes(dnatChainName("fastnet", "c2"))));
      // Other mappings than the ADD's: the record says what the ADD installed, still one transaction.
      await ok("DEL", 1, conf(1, 9999));
      assert.equal(calls(), ["iptables-restore"]);
      assert.not.ok(nat().some((l) => l.includes("CNI-DN-")));
      // Without the record, the DEL's own mappings do not match the ADD's: -D fails, read + plan.
      await ok("ADD", 1, conf(1));
      rmSync(recordPath({ network: "fastnet", containerId: "c1", ifname: "eth0" }));
      calls();
      await ok("DEL", 1, conf(1, 9999));
      assert.equal(calls(), ["iptables-restore", "iptables-save", "iptables-restore"]);
      assert.not.ok(nat().some((l) => l.includes("CNI-DN-")));

      // Someone flushed PREROUTING (the chains stayed): the next ADD notices and restores the jump.
      sh("ip", ["netns", "exec", ns.name, "iptables", "-t", "nat", "-F", "PREROUTING"]);
      await ok("ADD", 3, conf(3));
      assert.ok(calls().includes("iptables-save"));
      assert.ok(nat().includes("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"));
      await ok("DEL", 3, { cniVersion: "1.0.0", name: "fastnet", type: "portmap" });
      assert.not.ok(nat().some((l) => l.includes("CNI-DN-")));
    } finally {
      ns.delete();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

race(
  "DEL without mappings: no table read after an ADD that recorded nothing installed; otherwise read, weft's rules removed",
  async () => {
    const ns = TestNetns.create("wpmn");
    const other = TestNetns.create("wpmo");
    const dir = join("/tmp", uniqueName("wpmbin"));
    const net = uniqueName("nomapnet");
    try {
      execFileSync("mkdir", ["-p", dir]);
      installWeft(dir, "portmap");
      const exe = join(dir, "portmap");
      const { env, calls } = toolShim(dir, [...TABLE_TOOLS, "nft"]);
      const prevResult = { cniVersion: "1.0.0", ips: [{ address: "10.76.0.2/24" }] };
      const base = { cniVersion: "1.0.0", name: net, type: "portmap" };
      const withPorts = {
        ...base,
        prevResult,
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "udp" }] },
      };
      const noPorts = { ...base, prevResult };
      const run = async (where: TestNetns, cmd: string, cid: string, c: object) => {
        const r = await portmapIn(where, exe, cmd, cid, c, env);
        assert.is(r.status, 0, r.out);
      };
      const nat = (where = ns) =>
        sh("ip", ["netns", "exec", where.name, "iptables-save", "-t", "nat"])
          .split("\n")
          .filter((l) => l.includes("CNI-DN-"));
      const record = (cid: string) => {
        const path = recordPath({ network: net, containerId: cid, ifname: "eth0" });
        return existsSync(path)
          ? (JSON.parse(readFileSync(path, "utf8")) as { installed: string }).installed
          : undefined;
      };
      const [a, b, c, d] = ["a", "b", "c", "d"].map((x) => uniqueName(`nm${x}`));

      // The usual pod: ADD and DEL without mappings touch no table, and leave no record (nor its dir).
      await run(ns, "ADD", a!, noPorts);
      assert.equal(calls(), []);
      assert.is(record(a!), "none");
      await run(ns, "DEL", a!, base);
      assert.equal(calls(), []);
      assert.is(record(a!), undefined);
      assert.not.ok(
        existsSync(join(RECORD_DIR, net)),
        "the network's record directory is removed once empty",
      );

      // ADD with mappings records "rules" with their teardown; a repeated ADD without mappings keeps that
      // record; the DEL without mappings (nor prevResult) applies the teardown, reading no table.
      await run(ns, "ADD", b!, withPorts);
      assert.is(record(b!), "rules");
      assert.ok(nat().length > 0);
      await run(ns, "ADD", b!, noPorts);
      assert.is(record(b!), "rules");
      calls();
      await run(ns, "DEL", b!, base);
      assert.equal(calls(), ["iptables-restore"], "DEL of a pod with rules applies the record's teardown");
      assert.equal(nat(), []);
      assert.is(record(b!), undefined);

      // No record (a reboot empties /run; a pod the reference or an older weft added): read as before.
      await run(ns, "ADD", c!, withPorts);
      rmSync(recordPath({ network: net, containerId: c!, ifname: "eth0" }));
      calls();
      await run(ns, "DEL", c!, base);
      assert.ok(calls().includes("iptables-save"), "DEL without a record reads the table");
      assert.equal(nat(), []);

      // A record speaks of the nat table of the namespace that wrote it: another one reads its own.
      await run(ns, "ADD", d!, noPorts);
      await run(other, "ADD", d!, withPorts);
      assert.ok(nat(other).length > 0);
      await run(ns, "ADD", d!, noPorts);
      calls();
      await run(other, "DEL", d!, base);
      assert.ok(calls().includes("iptables-save"), "a record of another netns is not trusted");
      assert.equal(nat(other), []);

      // The record is what skips the read: rules another implementation made for an attachment weft
      // recorded as "none" stay after DEL, and GC removes them (and the records of attachments gone).
      await run(ns, "ADD", d!, noPorts);
      assert.is(record(d!), "none");
      const ref = await portmapIn(ns, "/usr/lib/cni/portmap", "ADD", d!, withPorts);
      assert.is(ref.status, 0, ref.out);
      assert.ok(nat().length > 0);
      await run(ns, "DEL", d!, base);
      assert.ok(nat().length > 0, "skipped: the reference's rules are GC's");
      await run(ns, "ADD", a!, noPorts);
      await run(ns, "GC", a!, { ...base, cniVersion: "1.1.0", "cni.dev/valid-attachments": [] });
      assert.equal(nat(), []);
      assert.is(record(a!), undefined);
    } finally {
      ns.delete();
      other.delete();
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(RECORD_DIR, net), { recursive: true, force: true });
    }
  },
);

race(
  "bad input: a CNI error on stdout, exit 1, nothing installed; no mappings: prevResult unchanged",
  async () => {
    const ns = TestNetns.create("wpmx");
    const dir = join("/tmp", uniqueName("wpmbin"));
    try {
      execFileSync("mkdir", ["-p", dir]);
      installWeft(dir, "portmap");
      const exe = join(dir, "portmap");
      const nat = () => sh("ip", ["netns", "exec", ns.name, "iptables-save", "-t", "nat"]);
      const nft = () => sh("ip", ["netns", "exec", ns.name, "nft", "list", "ruleset"]);
      const before = { nat: nat(), nft: nft() };
      const prevResult = { cniVersion: "1.0.0", ips: [{ address: "10.79.0.2/24" }] };
      const base = { cniVersion: "1.0.0", name: "badnet", type: "portmap", prevResult };
      const tcp = { hostPort: 8080, containerPort: 80, protocol: "tcp" };
      const cases: Array<[object, RegExp]> = [
        [
          { ...base, runtimeConfig: { portMappings: [tcp, { ...tcp, protocol: "icmp" }] } },
          /Invalid protocol: "icmp"/,
        ],
        [
          { ...base, runtimeConfig: { portMappings: [{ ...tcp, hostPort: 0 }] } },
          /Invalid host port number: 0/,
        ],
        [
          { ...base, runtimeConfig: { portMappings: [{ ...tcp, containerPort: 65536 }] } },
          /Invalid container port number: 65536/,
        ],
        [
          { ...base, markMasqBit: 32, runtimeConfig: { portMappings: [tcp] } },
          /MasqMarkBit must be between 0 and 31/,
        ],
        [{ ...base, backend: "bpf", runtimeConfig: { portMappings: [tcp] } }, /unrecognized backend "bpf"/],
        [
          { ...base, conditionsV4: ["ip", "saddr", "1.2.3.4"], runtimeConfig: { portMappings: [tcp] } },
          /iptables backend was requested but configuration contains nftables-specific options \[conditionsV4\]/,
        ],
        [
          { ...base, prevResult: undefined, runtimeConfig: { portMappings: [tcp] } },
          /must be called as chained plugin/,
        ],
        [
          { ...base, runtimeConfig: { portMappings: [{ ...tcp, hostPort: "80" }] } },
          /^failed to parse network configuration: json: cannot unmarshal string into Go struct field PortMapEntry\.runtimeConfig\.portMappings\.hostPort of type int$/,
        ],
      ];
      for (const [conf, msg] of cases) {
        const r = await portmapIn(ns, exe, "ADD", "bad1", conf);
        assert.is(r.status, 1, r.out);
        const doc = JSON.parse(r.out.slice(r.out.indexOf("{"), r.out.lastIndexOf("}") + 1)) as {
          code: number;
          msg: string;
        };
        assert.match(doc.msg, msg);
        assert.is(doc.code, 7, r.out);
      }
      assert.equal(stripComments(nat()), stripComments(before.nat));
      assert.equal(nft(), before.nft);
      assert.not.ok(existsSync(join(RECORD_DIR, "badnet")), "no record of a refused ADD");

      const none = await portmapIn(ns, exe, "ADD", "none1", base);
      assert.is(none.status, 0, none.out);
      assert.equal(JSON.parse(none.out), prevResult);
      assert.equal(stripComments(nat()), stripComments(before.nat));
      const del = await portmapIn(ns, exe, "DEL", "none1", base);
      assert.is(del.status, 0, del.out);
      assert.not.ok(existsSync(join(RECORD_DIR, "badnet")), "the DEL removed the ADD's record");
    } finally {
      ns.delete();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

race.run();
