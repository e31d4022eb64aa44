#!/usr/bin/env node
// What the overlay costs and how fast it converges: weftd's two backends on a cluster of node namespaces
// (test/helpers/cluster.ts: nodes on an underlay bridge, the packaged weftd in each, pods added through
// libcni with the kube-flannel list), measured in one run:
//
//   throughput   iperf3 (TCP, one stream) from a pod on node 1 to a pod on node 2, with host-gw and with
//                vxlan, next to iperf3 between the two node namespaces themselves (the underlay), in the
//                same cluster, and between two pods of one node (the pod path's veths and bridge alone);
//                rounds rotate who goes first; medians and the ratio to the underlay (the seed claims ~10%
//                loss for host-gw, 20-30% for vxlan, against a physical NIC; here the underlay is itself
//                veths and a bridge in memory, so every hop costs CPU and the ratios come out lower)
//   convergence  a node joins a running two-node cluster: weftd start -> /readyz; its lease -> the route
//                to it on every other node (`ip -ts monitor route` there, against the "Allocated lease"
//                line of its log); /readyz -> a pod on every other node gets a reply from its first pod
//                (that pod's ADD included)
//
//   node scripts/bench-overlay.mjs [--runs N] [--seconds S] [--weft DIR]
//
// The convergence is measured on both stores (STORES below): the embedded file store, and etcd (a
// throwaway etcd in the underlay's hub namespace, reached by every node over its eth0 as nodes reach an
// etcd on their network; test/helpers/cluster.ts hubEtcd()).
// Needs root, iperf3 and etcd (scripts/host-deps.sh installs them). Uses the compiled test helpers (build/), and
// compiles them first when they are missing or older than their sources.
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { median, parseOptions, requireExecutables, requireRoot, root, weftBinDir } from "./lib/bench.mjs";

const run = promisify(execFile);
const opts = parseOptions(
  "bench-overlay",
  process.argv.slice(2),
  { runs: 3, seconds: 3, weft: weftBinDir() },
  { "--seconds": ["seconds", "number"], "--weft": ["weft", "path"] },
);
requireRoot("bench-overlay", "network namespaces, links, weftd", 2);
requireExecutables("bench-overlay", [
  [
    opts.weft,
    ["weftd", "flannel", "bridge", "host-local"],
    "weft build (node scripts/build.mjs, or --weft DIR)",
  ],
  ["/usr/bin", ["iperf3"], "iperf3 (bash scripts/host-deps.sh)"],
  ["/usr/bin", ["etcd", "etcdctl"], "etcd-server and etcd-client (bash scripts/host-deps.sh)"],
]);
process.env.WEFT_BIN_DIR = opts.weft;

/** The compiled harness (build/test/helpers/cluster.js), compiled first when missing or stale. */
async function harness() {
  const out = join(root, "build", "test", "helpers", "cluster.js");
  const newest = (dir) => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(p));
      else if (e.name.endsWith(".ts")) t = Math.max(t, statSync(p).mtimeMs);
    }
    return t;
  };
  const sources = Math.max(...["test/helpers", "shared", "daemon"].map((d) => newest(join(root, d))));
  if (!existsSync(out) || statSync(out).mtimeMs < sources) {
    process.stderr.write("bench-overlay: compiling the test helpers (tsc)\n");
    execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(root, "tsconfig.json")], {
      stdio: "inherit",
    });
  }
  return import(out);
}

const { Cluster, firstReply, hubEtcd } = await harness();

/**
 * The stores the convergence is measured on: `make()` gives the cluster's store option
 * (test/helpers/cluster.ts ClusterStoreOption) and `done()` tears down what it started. hubEtcd() starts
 * a throwaway etcd in the underlay's hub when the cluster is made (plain http, flanneld's prefix), and
 * the cluster's cleanup stops it.
 */
const STORES = [
  { label: "file", make: async () => ({ kind: "file" }), done: async () => {} },
  { label: "etcd", make: async () => hubEtcd(), done: async () => {} },
];

/** Runs `cmd` inside a namespace. */
const inNs = (ns, cmd) => run("ip", ["netns", "exec", ns, ...cmd], { maxBuffer: 1 << 24 });

/** iperf3 from namespace `from` to `ip` (a server started for it in namespace `to`): Gbit/s received. */
async function iperf(from, to, ip) {
  const server = spawn("ip", ["netns", "exec", to, "iperf3", "-s", "-1", "-p", "5201"], { stdio: "ignore" });
  const exited = new Promise((r) => server.on("exit", r));
  try {
    for (let i = 0; ; i++) {
      const { stdout } = await inNs(to, ["ss", "-Hltn", "sport", "=", ":5201"]);
      if (stdout.trim()) break;
      if (i > 250) throw new Error(`iperf3 server in ${to} is not listening`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const { stdout } = await inNs(from, ["iperf3", "-c", ip, "-p", "5201", "-t", String(opts.seconds), "-J"]);
    return JSON.parse(stdout).end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill();
    await exited;
  }
}

/** A two-node cluster of `backend` with one pod per node. */
async function twoNodes(backend, store) {
  const c = await Cluster.create({
    nodes: 2,
    netConf: { Network: "10.244.0.0/16", Backend: { Type: backend } },
    store,
  });
  try {
    await c.startAll();
    for (const n of c.nodes) await n.addPod();
    return c;
  } catch (err) {
    await c.cleanup();
    throw err;
  }
}

// --- throughput -------------------------------------------------------------------------------------------

/** The ms time of a log line's timestamp (weft's logger: ISO time first). */
const logTime = (log, text) => {
  const line = log.split("\n").find((l) => l.includes(text));
  if (!line) throw new Error(`no log line with ${text}`);
  return Date.parse(line.split(" ")[0]);
};

async function throughput() {
  const clusters = {};
  try {
    for (const b of ["host-gw", "vxlan"]) clusters[b] = await twoNodes(b, { kind: "file" });
    const h = clusters["host-gw"];
    await h.nodes[0].addPod();
    const v = clusters.vxlan;
    const subjects = [
      {
        label: "node -> node (underlay)",
        go: () => iperf(h.nodes[0].name, h.nodes[1].name, h.nodes[1].ip),
        xs: [],
      },
      {
        // The pod path's own veths and bridge, no node-to-node hop: where the rest of the cost lies.
        label: "pod -> pod, same node",
        go: () =>
          iperf(h.nodes[0].pods[0].pod.netns.name, h.nodes[0].pods[1].pod.netns.name, h.nodes[0].pods[1].ip),
        xs: [],
      },
      {
        label: "pod -> pod, host-gw",
        go: () =>
          iperf(h.nodes[0].pods[0].pod.netns.name, h.nodes[1].pods[0].pod.netns.name, h.nodes[1].pods[0].ip),
        xs: [],
      },
      {
        label: "pod -> pod, vxlan",
        go: () =>
          iperf(v.nodes[0].pods[0].pod.netns.name, v.nodes[1].pods[0].pod.netns.name, v.nodes[1].pods[0].ip),
        xs: [],
      },
    ];
    for (let i = 0; i < opts.runs; i++) {
      // Who goes first rotates, so drift on a busy machine hits all alike.
      for (let k = 0; k < subjects.length; k++) {
        const s = subjects[(i + k) % subjects.length];
        s.xs.push(await s.go());
      }
    }
    const base = median(subjects[0].xs);
    console.log(
      `iperf3 TCP, one stream, ${opts.seconds} s, ${opts.runs} runs each (median Gbit/s; pods' MTU: host-gw 1500, vxlan 1450)`,
    );
    console.log("path                        Gbit/s   vs underlay   runs");
    for (const s of subjects) {
      const m = median(s.xs);
      const ratio = m / base;
      const loss = ratio < 1 ? ` (-${((1 - ratio) * 100).toFixed(0)}%)` : "";
      console.log(
        `${s.label.padEnd(26)} ${m.toFixed(2).padStart(7)}   ${`${ratio.toFixed(2)}x${loss}`.padEnd(12)}  ${s.xs.map((x) => x.toFixed(2)).join(" ")}`,
      );
    }
    console.log("(the seed's claim for flannel: host-gw ~10% below the underlay, vxlan 20-30%)");
  } finally {
    for (const c of Object.values(clusters)) await c.cleanup();
  }
}

// --- convergence ------------------------------------------------------------------------------------------

/** `ip -ts monitor route` in a node until stopped: the time each route appeared. */
function routeMonitor(node) {
  const child = spawn("ip", ["netns", "exec", node.name, "ip", "-ts", "monitor", "route"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  return {
    /** When a route to `dst` was added (ms), or undefined. */
    added(dst) {
      // "[2026-11-30T09:25:32.737786] 10.244.3.0/24 via ..." (local time); deletions start with "Deleted".
      const m = out.split("\n").find((l) => l.includes(`] ${dst} `));
      return m ? new Date(m.slice(1, 24)).getTime() : undefined;
    },
    stop() {
      child.kill();
    },
  };
}

async function convergence(store) {
  const rows = [];
  for (const backend of ["vxlan", "host-gw"]) {
    const c = await twoNodes(backend, await store.make());
    const times = { ready: [], routes: [], reply: [], add: [] };
    try {
      for (let i = 0; i < opts.runs; i++) {
        const monitors = c.nodes.filter((n) => n.running).map((n) => ({ n, m: routeMonitor(n) }));
        await new Promise((r) => setTimeout(r, 100));
        const j = c.addNode();
        const t0 = Date.now();
        j.start();
        await j.ready();
        const log = j.log();
        const readyAt = logTime(log, '"weftd is ready"');
        const leaseAt = logTime(log, '"Allocated lease');
        const subnet = j.subnet();
        // The route on every other node, from its kernel's own timestamp.
        let routed;
        for (let k = 0; k < 200 && routed === undefined; k++) {
          const at = monitors.map(({ m }) => m.added(subnet));
          if (at.every((x) => x !== undefined)) routed = Math.max(...at);
          else await new Promise((r) => setTimeout(r, 10));
        }
        for (const { m } of monitors) m.stop();
        if (routed === undefined) throw new Error(`no route to ${subnet} on the other nodes`);
        const a0 = Date.now();
        const pod = await j.addPod();
        const added = Date.now() - a0;
        const replies = await Promise.all(
          monitors.map(async ({ n }) => {
            await firstReply(n.pods[0], pod.ip, 10, 5000);
            return Date.now() - readyAt;
          }),
        );
        times.ready.push(readyAt - t0);
        times.routes.push(routed - leaseAt);
        times.reply.push(Math.max(...replies));
        times.add.push(added);
      }
    } finally {
      await c.cleanup();
    }
    rows.push({
      store: store.label,
      backend,
      ...Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])),
    });
  }
  return rows;
}

await throughput();
console.log("");
const rows = [];
for (const s of STORES) {
  try {
    rows.push(...(await convergence(s)));
  } finally {
    await s.done();
  }
}
console.log(`a node joining a running two-node cluster, ${opts.runs} joins each (median ms)`);
console.log(
  "store  backend   start->/readyz   lease->routes on the others   /readyz->first pod reply (its ADD)",
);
for (const r of rows) {
  console.log(
    `${r.store.padEnd(5)}  ${r.backend.padEnd(8)}  ${r.ready.toFixed(0).padStart(14)}   ${r.routes.toFixed(0).padStart(27)}   ${r.reply.toFixed(0).padStart(24)} (${r.add.toFixed(0)})`,
  );
}
