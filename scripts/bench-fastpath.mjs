#!/usr/bin/env node
// The resident fast path (issue 11) against the reference, in one run: pods through the flannel lists
// driven by libcni (cnitool) as a runtime drives them, for three implementations taking turns:
//
//   reference  Debian's bridge + host-local (+ portmap) given the delegate config flannel writes (Debian
//              ships no flannel plugin, so the reference flannel's own few ms are missing: conservative)
//   weftd      weft's executables as thin clients of a `weftd --cni-only` on a socket of its own
//              (WEFT_CNI_SOCKET): the calls run in the daemon
//   local      weft's executables doing the work themselves (WEFT_CNI_SOCKET="")
//
// and reports, with the issue's targets (the weftd figures are the ones the targets are about):
//   1. the time a call costs above bare `node -e 0` (<= 15 ms): weftd: a bridge ADD's or DEL's wall time
//      minus the time weftd spent on it (its /metrics histogram, read between calls); local: VERSION
//   2. pod ADD+DEL through the kube-flannel list with one hostPort (<= 1.2x the reference); the same list
//      for a pod without hostPorts (most pods)
//   3. pod ADD+DEL through flannel -> bridge -> host-local (<= 2.2x)
//   4. 20 pods started 10 at a time through the kube-flannel list, wall time of the ADDs (<= 2.5x)
//   5. CPU seconds per pod lifecycle (ADD+DEL): the plugins, the tools they run and libcni's cnitool
//      (children of this process, /proc/self/stat), plus weftd's own (/proc/<pid>/stat)
// with, for each, the floor a Node process per call puts under weft (k calls x `node -e 0`),
// and prints weftd's /metrics (the calls it counted) while the 20 pods are up.
//
//   node scripts/bench-fastpath.mjs [--runs N] [--pods N] [--parallel N] [--rounds N] [--weft DIR] [--ref DIR]
//
// Needs root: network namespaces, bridges, nat rules; all removed at the end.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildCnitool,
  childrenCpuMs,
  flannelList,
  fmtMs,
  freeOctet,
  inTurn,
  median,
  netnsPool,
  node22,
  parseOptions,
  REF_DIR,
  requireExecutables,
  requireRoot,
  timedSpawn,
  weftBinDir,
} from "./lib/bench.mjs";

const TARGETS = { hostPortList: 1.2, podPath: 2.2, aboveNodeMs: 15, parallel: 2.5 };

const opts = parseOptions(
  "bench-fastpath",
  process.argv.slice(2),
  { runs: 30, pods: 20, parallel: 10, rounds: 3, weft: weftBinDir(), ref: REF_DIR },
  {
    "--pods": ["pods", "number"],
    "--parallel": ["parallel", "number"],
    "--rounds": ["rounds", "number"],
    "--weft": ["weft", "path"],
    "--ref": ["ref", "string"],
  },
);

requireRoot("bench-fastpath", "network namespaces, bridges, nat rules", 2);
requireExecutables("bench-fastpath", [
  [
    opts.weft,
    ["flannel", "bridge", "host-local", "portmap", "weftd"],
    "weft build (npm run build, or --weft DIR)",
  ],
  [opts.ref, ["bridge", "host-local", "portmap"], "reference plugins (containernetworking-plugins)"],
]);

const cnitool = buildCnitool();
const tag = (process.pid % 4096).toString(16);
const octet = freeOctet();
const work = mkdtempSync(join(tmpdir(), "bench-fastpath-"));
const sock = join(work, "weftd", "cni.sock");
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const loadAtStart = load();

/** A free TCP port on 127.0.0.1 for weftd's /metrics. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** user + system CPU of a process so far, in ms (clock ticks of 10 ms). */
function processCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** weftd's /metrics as an operator would look at it. */
function curlMetrics() {
  const r = spawnSync("curl", ["-sS", `http://127.0.0.1:${weftd.port}/metrics`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`curl /metrics: ${r.error?.message ?? ""}${r.stderr}`);
  return r.stdout;
}

async function metrics(port) {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  return r.text();
}

/** The sum of a metric's samples whose labels include `labels` (text format, one sample per line). */
function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** weftd --cni-only on a socket and a /metrics port of its own; resolves once /readyz answers 200. */
async function startWeftd(subnetFile) {
  const port = await freePort();
  const logFd = openSync(join(work, "weftd.log"), "a");
  const child = spawn(
    join(opts.weft, "weftd"),
    [
      "--cni-only",
      `--cni-socket=${sock}`,
      "--healthz-ip=127.0.0.1",
      `--healthz-port=${port}`,
      `--subnet-file=${subnetFile}`,
    ],
    { stdio: ["ignore", logFd, logFd] },
  );
  closeSync(logFd);
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return { child, port };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error(`weftd did not get ready: ${readFileSync(join(work, "weftd.log"), "utf8")}`);
}

// ---- the networks: each implementation gets its own subnet, bridge, conflist, CNI_PATH and data dirs.
const WEFT4 = ["flannel", "bridge", "host-local", "portmap"];
const fromDir = (dir, names) => Object.fromEntries(names.map((n) => [n, dir]));
let third = 0;
function network(impl, portmap) {
  third += 1;
  const ref = impl === "reference";
  const n = flannelList({
    dir: join(work, `${portmap ? "list" : "path"}-${impl}`),
    label: impl,
    name: `bfp-${portmap ? "l" : "p"}${impl[0]}-${tag}`,
    bridge: `wfp${portmap ? "l" : "p"}${impl[0]}${tag}`,
    octet,
    third,
    sources: ref
      ? fromDir(opts.ref, ["bridge", "host-local", ...(portmap ? ["portmap"] : [])])
      : fromDir(opts.weft, WEFT4),
    asDelegate: ref,
    portmap,
    env: impl === "weftd" ? { WEFT_CNI_SOCKET: sock } : impl === "local" ? { WEFT_CNI_SOCKET: "" } : {},
  });
  return { ...n, impl, third };
}
const IMPLS = ["reference", "weftd", "local"];
const lists = IMPLS.map((i) => network(i, true));
const paths = IMPLS.map((i) => network(i, false));
const hostPortOf = (n) => ({
  CAP_ARGS: JSON.stringify({
    portMappings: [{ hostPort: 30000 + octet * 64 + n.third, containerPort: 80, protocol: "tcp" }],
  }),
});

const namespaces = netnsPool(`wfpn${tag}`);
let weftd;

/** One cnitool call (`add`/`del`), asynchronously; resolves its wall time in ms. */
function cni(net, verb, netns, id, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cnitool, [verb, net.name, netns], {
      env: { ...net.env, ...extraEnv, CNI_CONTAINERID: id },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      out += d;
    });
    p.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${net.label} ${verb} ${id} failed: ${out}`));
      else resolve(ms);
    });
  });
}

/** CPU of this process's children and of weftd, in ms, so far. */
const cpuNow = () => childrenCpuMs() + processCpuMs(weftd.child.pid);

/** `runs` pod lifecycles per network, the networks taking turns; medians and CPU per lifecycle. */
async function lifecycles(nets, extraEnv = () => ({}), label = "") {
  const rows = nets.map((n) => ({ label: n.impl, add: [], del: [], cpu: 0 }));
  for (const n of nets) {
    const ns = namespaces.add();
    await cni(n, "add", ns, `warm${label}`, extraEnv(n));
    await cni(n, "del", ns, `warm${label}`, extraEnv(n));
  }
  for (let i = 0; i < opts.runs; i++) {
    for (const n of inTurn(nets, i)) {
      const row = rows[nets.indexOf(n)];
      const ns = namespaces.add();
      const id = `b${label}${i}`;
      const c0 = cpuNow();
      row.add.push(await cni(n, "add", ns, id, extraEnv(n)));
      row.del.push(await cni(n, "del", ns, id, extraEnv(n)));
      row.cpu += cpuNow() - c0;
    }
  }
  return rows.map((r) => ({
    label: r.label,
    add: median(r.add),
    del: median(r.del),
    total: median(r.add.map((a, i) => a + r.del[i])),
    cpu: r.cpu / opts.runs,
  }));
}

/** At most `limit` of `jobs` (functions returning promises) at a time; resolves the wall time in ms. */
async function pool(jobs, limit) {
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** `pods` pods started `parallel` at a time, then deleted so; medians over `rounds`. Metrics mid-way. */
async function parallelPods(nets) {
  const rows = nets.map((n) => ({ label: n.impl, add: [], del: [], cpu: 0 }));
  let shown = "";
  for (let round = 0; round < opts.rounds; round++) {
    for (const n of inTurn(nets, round)) {
      const row = rows[nets.indexOf(n)];
      const pods = Array.from({ length: opts.pods }, (_, i) => ({
        ns: namespaces.add(),
        id: `p${round}x${i}`,
      }));
      const c0 = cpuNow();
      row.add.push(
        await pool(
          pods.map((p) => () => cni(n, "add", p.ns, p.id)),
          opts.parallel,
        ),
      );
      if (n.impl === "weftd" && !shown) shown = curlMetrics();
      row.del.push(
        await pool(
          pods.map((p) => () => cni(n, "del", p.ns, p.id)),
          opts.parallel,
        ),
      );
      row.cpu += cpuNow() - c0;
    }
  }
  return {
    metricsText: shown,
    rows: rows.map((r) => ({
      label: r.label,
      add: median(r.add),
      del: median(r.del),
      cpu: r.cpu / (opts.rounds * opts.pods),
    })),
  };
}

/** The weft executable's cost above `node -e 0`: served bridge calls minus weftd's time; local VERSION. */
async function aboveNode() {
  const node = node22();
  const bridgeConf = JSON.stringify({
    cniVersion: "1.0.0",
    name: `bfp-b-${tag}`,
    type: "bridge",
    bridge: `wfpb${tag}`,
    ipam: { type: "host-local", subnet: `10.${octet}.250.0/24`, dataDir: join(work, "bridge-ipam") },
  });
  const env = (command, ns, id) => ({
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: ns,
    CNI_IFNAME: "eth0",
    CNI_PATH: opts.weft,
    WEFT_CNI_SOCKET: sock,
  });
  const r = { node: [], nodeCpu: 0, served: { ADD: [], DEL: [] }, version: [], daemon: { ADD: [], DEL: [] } };
  const bridge = join(opts.weft, "bridge");
  for (let i = 0; i < opts.runs + 2; i++) {
    const ns = namespaces.add();
    const bare = timedSpawn(node, ["-e", "0"], { env: { PATH: "/usr/bin:/bin" } });
    const nodeMs = bare.ms;
    if (i >= 2) r.nodeCpu += bare.cpu;
    const versionMs = timedSpawn(bridge, [], {
      env: { PATH: "/usr/bin:/bin", CNI_COMMAND: "VERSION", WEFT_CNI_SOCKET: "" },
      input: "",
    }).ms;
    for (const verb of ["ADD", "DEL"]) {
      const before = metricSum(await metrics(weftd.port), "weftd_cni_call_duration_seconds_sum", {
        plugin: "bridge",
        verb,
      });
      const call = timedSpawn(bridge, [], { env: env(verb, ns, `a${i}`), input: bridgeConf });
      if (call.r.status !== 0)
        throw new Error(`served bridge ${verb} failed: ${call.r.stdout}${call.r.stderr}`);
      const after = metricSum(await metrics(weftd.port), "weftd_cni_call_duration_seconds_sum", {
        plugin: "bridge",
        verb,
      });
      if (i < 2) continue;
      r.served[verb].push(call.ms - (after - before) * 1000);
      r.daemon[verb].push((after - before) * 1000);
    }
    if (i < 2) continue;
    r.node.push(nodeMs);
    r.version.push(versionMs);
  }
  spawnSync("ip", ["link", "del", `wfpb${tag}`]);
  const nodeMs = median(r.node);
  return {
    nodeMs,
    nodeCpu: r.nodeCpu / opts.runs,
    servedAdd: median(r.served.ADD) - nodeMs,
    servedDel: median(r.served.DEL) - nodeMs,
    daemonAdd: median(r.daemon.ADD),
    daemonDel: median(r.daemon.DEL),
    version: median(r.version) - nodeMs,
  };
}

/**
 * What the kernel takes to delete a pod's veth (RTM_DELLINK waits for RCU grace periods): every DEL pays
 * it, the reference's as well, so it belongs to the floor under any implementation. Median of `ip link del`
 * in a scratch netns, minus an `ip` that does nothing there.
 */
function vethDeletionMs() {
  const del = [];
  const idle = [];
  for (let i = 0; i < 9; i++) {
    const ns = namespaces.add();
    const name = ns.slice(ns.lastIndexOf("/") + 1);
    spawnSync("ip", ["link", "add", `wfpd${tag}`, "type", "veth", "peer", "name", "eth0", "netns", name]);
    spawnSync("ip", ["-n", name, "link", "set", "eth0", "up"]);
    spawnSync("ip", ["link", "set", `wfpd${tag}`, "up"]);
    idle.push(timedSpawn("ip", ["-n", name, "link", "show", "dev", "lo"]).ms);
    del.push(timedSpawn("ip", ["-n", name, "link", "del", "eth0"]).ms);
  }
  spawnSync("ip", ["link", "del", `wfpd${tag}`]); // gone with its peer, unless a step above failed
  return Math.max(0, median(del) - median(idle));
}

const ratio = (x, ref) => `${(x / ref).toFixed(2)}x`;
const verdict = (ok) => (ok ? "met" : "MISSED");
const line = (s = "") => process.stdout.write(`${s}\n`);

function table(title, rows, withCpu = true) {
  const ref = rows.find((r) => r.label === "reference");
  line(title);
  line(
    `  ${"impl".padEnd(10)} ${"ADD".padStart(7)} ${"DEL".padStart(7)} ${"ADD+DEL".padStart(8)}  vs ref` +
      (withCpu ? `  ${"CPU/pod".padStart(8)}  vs ref` : ""),
  );
  for (const r of rows) {
    line(
      `  ${r.label.padEnd(10)} ${fmtMs(r.add)} ${fmtMs(r.del)} ${fmtMs(r.total, 8)}  ${ratio(r.total, ref.total).padStart(6)}` +
        (withCpu ? `  ${fmtMs(r.cpu, 8)}  ${ratio(r.cpu, ref.cpu).padStart(6)}` : ""),
    );
  }
}

try {
  weftd = await startWeftd(join(work, "list-weftd", "subnet.env"));
  line(
    `bench-fastpath: ${opts.runs} runs, ${opts.pods} pods ${opts.parallel} at a time x ${opts.rounds} rounds`,
  );
  line(`  weft: ${opts.weft}   reference: ${opts.ref}   load average at start: ${loadAtStart}`);
  line(`  weftd: weftd --cni-only --cni-socket=${sock} (pid ${weftd.child.pid})`);
  line("  CPU/pod: user+system ms of one pod's ADD+DEL: plugins, their tools, cnitool, and weftd");
  line();

  const above = await aboveNode();
  line(`1. above bare node -e 0 (${above.nodeMs.toFixed(1)} ms), median ms per call`);
  line(
    `   weftd-served bridge ADD ${above.servedAdd.toFixed(1)}, DEL ${above.servedDel.toFixed(1)} (wall minus weftd's own ${above.daemonAdd.toFixed(1)} / ${above.daemonDel.toFixed(1)} ms)`,
  );
  line(`   local: the executable's start (CNI_COMMAND=VERSION) ${above.version.toFixed(1)}`);
  const worst = Math.max(above.servedAdd, above.servedDel);
  line(
    `   target weftd <= ${TARGETS.aboveNodeMs} ms: ${verdict(worst <= TARGETS.aboveNodeMs)} (${worst.toFixed(1)} ms)`,
  );
  line();

  const floor = (calls) =>
    `   floor: ${calls} weft calls x node -e 0 = ${(calls * above.nodeMs).toFixed(1)} ms (a Node process per call cannot go below)`;
  const vethDel = vethDeletionMs();
  /** The verdict, and when the target lies below the floor, that no Node process per call can meet it. */
  const belowFloor = (targetMs, floorMs, what) =>
    targetMs < floorMs
      ? `   the target (${targetMs.toFixed(1)} ms) is below ${what} (${floorMs.toFixed(1)} ms): out of reach for a Node executable per call`
      : `   the target (${targetMs.toFixed(1)} ms) is above ${what} (${floorMs.toFixed(1)} ms)`;
  const hostPort = await lifecycles(lists, hostPortOf, "h");
  table("2. kube-flannel list with one hostPort, ADD+DEL (median ms)", hostPort);
  line(floor(4));
  const [refH, fastH, localH] = hostPort;
  line(
    `   target weftd <= ${TARGETS.hostPortList}x the reference: ${verdict(fastH.total / refH.total <= TARGETS.hostPortList)} (${ratio(fastH.total, refH.total)}; local ${ratio(localH.total, refH.total)})`,
  );
  const noPort = await lifecycles(lists, () => ({}), "n");
  table("   the same list, a pod without hostPorts", noPort);
  line(floor(4));
  line();

  const podPath = await lifecycles(paths);
  table("3. flannel -> bridge -> host-local, ADD+DEL (median ms)", podPath);
  line(floor(2));
  line(
    `   the kernel's deletion of the pod's veth, in every DEL (the reference's too): ${vethDel.toFixed(1)} ms`,
  );
  const [refP, fastP, localP] = podPath;
  line(
    belowFloor(TARGETS.podPath * refP.total, 2 * above.nodeMs + vethDel, "2 x node -e 0 + the veth deletion"),
  );
  line(
    `   target weftd <= ${TARGETS.podPath}x the reference: ${verdict(fastP.total / refP.total <= TARGETS.podPath)} (${ratio(fastP.total, refP.total)}; local ${ratio(localP.total, refP.total)})`,
  );
  line();

  const par = await parallelPods(lists);
  const parRows = par.rows.map((r) => ({ ...r, total: r.add + r.del }));
  const parTitle = `4. ${opts.pods} pods ${opts.parallel} at a time, kube-flannel list: wall ms of all ADDs, all DELs (median of ${opts.rounds})`;
  table(parTitle, parRows);
  const cpus = availableParallelism();
  line(
    `   floor: ${opts.pods} pods x 2 weft calls x node -e 0's CPU (${above.nodeCpu.toFixed(1)} ms) / ${cpus} CPUs = ` +
      `${((opts.pods * 2 * above.nodeCpu) / cpus).toFixed(0)} ms for the ADDs`,
  );
  const [refQ, fastQ, localQ] = parRows;
  line(belowFloor(TARGETS.parallel * refQ.add, (opts.pods * 2 * above.nodeCpu) / cpus, "that CPU floor"));
  line(
    `   target weftd ADDs <= ${TARGETS.parallel}x the reference's wall time: ${verdict(fastQ.add / refQ.add <= TARGETS.parallel)} (${ratio(fastQ.add, refQ.add)}; local ${ratio(localQ.add, refQ.add)})`,
  );
  line();

  line("5. CPU per pod lifecycle (ms): see the CPU/pod columns above (weftd's included for weftd)");
  for (const [what, rows] of [
    ["list + hostPort", hostPort],
    ["list, no hostPort", noPort],
    ["flannel->bridge->host-local", podPath],
    [`${opts.pods} pods ${opts.parallel} at a time`, parRows],
  ]) {
    line(`   ${what.padEnd(28)} ${rows.map((r) => `${r.label} ${(r.cpu / 1000).toFixed(3)} s`).join(", ")}`);
  }
  line();

  line(`weftd's /metrics while ${opts.pods} pods were up (curl -sS http://127.0.0.1:${weftd.port}/metrics):`);
  const relevant =
    /^weftd_(cni_calls_total|cni_call_errors_total|cni_call_duration_seconds_(sum|count)|ipam_addresses)/;
  for (const l of par.metricsText.split("\n")) if (relevant.test(l)) line(`   ${l}`);
  const end = curlMetrics();
  line(
    `   at the end: ${metricSum(end, "weftd_cni_calls_total")} calls counted, ` +
      `${metricSum(end, "weftd_cni_call_errors_total")} errors`,
  );
  line(`load average at the end: ${load()}`);
} finally {
  weftd?.child.kill();
  namespaces.removeAll();
  for (const n of [...lists, ...paths]) spawnSync("ip", ["link", "del", n.bridge]);
  rmSync(work, { recursive: true, force: true });
}
