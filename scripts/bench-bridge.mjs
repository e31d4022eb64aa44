#!/usr/bin/env node
// ADD+DEL of one pod through weft's bridge + host-local against the reference bridge + host-local
// (/usr/lib/cni, Debian's containernetworking-plugins), with the same delegate config flannel writes,
// interleaved in one run. Each plugin is exec'd directly, as a runtime does: CNI_* in the environment, the
// config on stdin. Prints the medians and the ratio weft/reference (target: at most 1.6).
//
//   node scripts/bench-bridge.mjs [--runs N] [--weft DIR] [--ref DIR]
//
// weft's executables come from --weft, else $WEFT_BIN_DIR, $WEFT_DIST or dist/bin (`node scripts/build.mjs`).
// Needs root: it creates network namespaces, two bridges (wbb*/wbr*) and reservations in a temp dir,
// and removes them all at the end.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  dirOptions,
  fmtMs,
  inTurn,
  medianRow,
  netnsPool,
  requireExecutables,
  requireRoot,
  timedSpawn,
} from "./lib/bench.mjs";

const { runs, weft: weftDir, ref: refDir } = dirOptions("bench-bridge");

requireRoot("bench-bridge", "network namespaces, bridges", 2);
requireExecutables("bench-bridge", [
  [weftDir, ["bridge", "host-local"], "weft build (node scripts/build.mjs, or --weft DIR)"],
  [refDir, ["bridge", "host-local"], "reference plugins"],
]);

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

function call(impl, command, netns, id) {
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: impl.dir,
  };
  const { r, ms, cpu } = timedSpawn(join(impl.dir, "bridge"), [], { env, input: impl.conf });
  impl.cpu += cpu;
  if (r.status !== 0) throw new Error(`${impl.label} ${command} failed: ${r.stdout}${r.stderr}`);
  return ms;
}

const namespaces = netnsPool(`wbn${tag}`);

try {
  // One warm-up pod each: creates the bridges and fills the page cache with both executables.
  for (const impl of impls) {
    const ns = namespaces.add();
    call(impl, "ADD", ns, "warmup");
    call(impl, "DEL", ns, "warmup");
    impl.cpu = 0;
  }
  for (let i = 0; i < runs; i++) {
    // Alternate which goes first so drift on a busy machine hits both alike.
    for (const impl of inTurn(impls, i)) {
      const ns = namespaces.add();
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
    ...medianRow(impl, ["add", "del", "total", "floor"]),
    cpu: impl.cpu / runs,
  }));
  console.log(`bridge + host-local, ADD+DEL, ${runs} runs each (median ms)`);
  console.log("impl        ADD      DEL      ADD+DEL   CPU/ADD+DEL   2xVERSION (process start floor)");
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(10)} ${fmtMs(r.add, 6)}  ${fmtMs(r.del, 6)}  ${fmtMs(r.total, 8)}  ${fmtMs(r.cpu, 10)}  ${fmtMs(r.floor, 10)}`,
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
  namespaces.removeAll();
  for (const impl of impls) spawnSync("ip", ["link", "del", JSON.parse(impl.conf).bridge]);
  rmSync(work, { recursive: true, force: true });
}
