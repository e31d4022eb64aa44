#!/usr/bin/env node
// ADD+DEL of one pod through weft's bridge + host-local against the reference bridge + host-local
// (/usr/lib/cni, Debian's containernetworking-plugins), with the same delegate config flannel writes,
// interleaved in one run. Each plugin is exec'd directly, as a runtime does: CNI_* in the environment, the
// config on stdin. Prints the medians and the ratio weft/reference (target: at most 1.6).
//
//   node scripts/bench-bridge.mjs [--runs N] [--weft DIR] [--ref DIR]
//
// weft's executables come from --weft, else $WEFT_BIN_DIR, else dist/bin (`node scripts/build.mjs`).
// Needs root: it creates network namespaces, two bridges (wbb*/wbr*) and reservations in a temp dir,
// and removes them all at the end.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const runs = Number(option("runs", "30"));
const weftDir = resolve(option("weft", process.env.WEFT_BIN_DIR ?? join(root, "dist", "bin")));
const refDir = option("ref", "/usr/lib/cni");

if (process.getuid?.() !== 0) {
  console.error("bench-bridge: needs root (network namespaces, bridges)");
  process.exit(2);
}
for (const [dir, what] of [
  [weftDir, "weft build (node scripts/build.mjs, or --weft DIR)"],
  [refDir, "reference plugins"],
]) {
  if (!existsSync(join(dir, "bridge")) || !existsSync(join(dir, "host-local"))) {
    console.error(`bench-bridge: no bridge/host-local in ${dir}: ${what}`);
    process.exit(2);
  }
}

const tag = (process.pid % 4096).toString(16);
const octet = 100 + (process.pid % 150);
const work = mkdtempSync(join(tmpdir(), "bench-bridge-"));

// What the flannel plugin hands to bridge for FLANNEL_SUBNET=10.x.y.1/24, FLANNEL_MTU=1450, ipMasq off.
function delegateConf(name, bridge, subnet) {
  return JSON.stringify({
    cniVersion: "0.3.1",
    name,
    type: "bridge",
    bridge,
    hairpinMode: true,
    ipMasq: false,
    isDefaultGateway: true,
    isGateway: true,
    mtu: 1450,
    ipam: {
      type: "host-local",
      dataDir: join(work, "ipam"),
      ranges: [[{ subnet }]],
      routes: [{ dst: `10.${octet}.0.0/16` }],
    },
  });
}

const impls = [
  {
    label: "weft",
    dir: weftDir,
    conf: delegateConf(`wbb${tag}`, `wbb${tag}`, `10.${octet}.1.0/24`),
    times: [],
    cpu: 0,
  },
  {
    label: "reference",
    dir: refDir,
    conf: delegateConf(`wbr${tag}`, `wbr${tag}`, `10.${octet}.2.0/24`),
    times: [],
    cpu: 0,
  },
];

// CPU time of the children this process has waited for (cutime + cstime, in clock ticks of 10 ms): less
// sensitive than wall time to other load on the machine, so it is reported too.
function childCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

function call(impl, command, netns, id) {
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: impl.dir,
  };
  const c0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(join(impl.dir, "bridge"), [], { env, input: impl.conf, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  impl.cpu += childCpuMs() - c0;
  if (r.status !== 0) throw new Error(`${impl.label} ${command} failed: ${r.stdout}${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const namespaces = [];
function newNetns() {
  const name = `wbn${tag}${namespaces.length.toString(36)}`;
  execFileSync("ip", ["netns", "add", name]);
  namespaces.push(name);
  return `/var/run/netns/${name}`;
}

try {
  // One warm-up pod each: creates the bridges and fills the page cache with both executables.
  for (const impl of impls) {
    const ns = newNetns();
    call(impl, "ADD", ns, "warmup");
    call(impl, "DEL", ns, "warmup");
    impl.cpu = 0;
  }
  for (let i = 0; i < runs; i++) {
    // Alternate which goes first so drift on a busy machine hits both alike.
    const order = i % 2 ? [impls[1], impls[0]] : impls;
    for (const impl of order) {
      const ns = newNetns();
      const id = `bench${i}`;
      const add = call(impl, "ADD", ns, id);
      const del = call(impl, "DEL", ns, id);
      // Two VERSION calls: what two process starts cost alone, the floor under ADD+DEL.
      const cpu = impl.cpu;
      const floor = call(impl, "VERSION", "", "") + call(impl, "VERSION", "", "");
      impl.cpu = cpu;
      impl.times.push({ add, del, total: add + del, floor });
    }
  }
  const rows = impls.map((impl) => ({
    label: impl.label,
    add: median(impl.times.map((t) => t.add)),
    del: median(impl.times.map((t) => t.del)),
    total: median(impl.times.map((t) => t.total)),
    floor: median(impl.times.map((t) => t.floor)),
    cpu: impl.cpu / runs,
  }));
  console.log(`bridge + host-local, ADD+DEL, ${runs} runs each (median ms)`);
  console.log("impl        ADD      DEL      ADD+DEL   CPU/ADD+DEL   2xVERSION (process start floor)");
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(10)} ${r.add.toFixed(1).padStart(6)}  ${r.del.toFixed(1).padStart(6)}  ${r.total.toFixed(1).padStart(8)}  ${r.cpu.toFixed(1).padStart(10)}  ${r.floor.toFixed(1).padStart(10)}`,
    );
  }
  const ratio = rows[0].total / rows[1].total;
  console.log(
    `ratio weft/reference: ${ratio.toFixed(2)}x (target <= 1.6x); CPU ratio ${(rows[0].cpu / rows[1].cpu).toFixed(2)}x`,
  );
  const beyond = (r) => r.total - r.floor;
  console.log(
    `beyond two process starts: weft ${beyond(rows[0]).toFixed(1)} ms, reference ${beyond(rows[1]).toFixed(1)} ms (${(beyond(rows[0]) / beyond(rows[1])).toFixed(2)}x)`,
  );
} finally {
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns]);
  for (const impl of impls) spawnSync("ip", ["link", "del", JSON.parse(impl.conf).bridge]);
  rmSync(work, { recursive: true, force: true });
}
