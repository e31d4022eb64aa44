#!/usr/bin/env node
// ADD+DEL of one pod through the flannel list without port mappings, driven by libcni (the cnitool
// client) as a runtime drives it, three chains interleaved in one run. Prints medians and ratios
// (target: weft at most 1.6x the reference).
//
//   node scripts/bench-podpath.mjs [--runs N] [--weft DIR] [--ref DIR]
//
//   weft       flannel -> bridge -> host-local, all weft (--weft / $WEFT_BIN_DIR / $WEFT_DIST / dist/bin): links to one
//              executable, so flannel runs its delegates in-process.
//   reference  Debian's bridge + host-local (/usr/lib/cni) given the delegate config flannel writes for
//              the same subnet.env, as a one-plugin list. Debian ships no flannel plugin (upstream dropped
//              it in v1.0.0), so the reference flannel's own few ms (a Go process start, the config
//              rebuild, one file write) are not in this figure; the ratio is therefore conservative.
//   mixed      weft's flannel delegating to the reference bridge + host-local: the drop-in case of a node
//              that replaced only flannel. It includes one weft process start.
// Each timed iteration is two cnitool runs (add, del), so libcni's own cost is in every figure.
// Needs root: network namespaces, three bridges, temp dirs; all removed at the end.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildCnitool,
  cnitoolCall,
  dirOptions,
  flannelList,
  fmtMs,
  inTurn,
  medianRow,
  netnsPool,
  requireExecutables,
  requireRoot,
} from "./lib/bench.mjs";

const { runs, weft: weftDir, ref: refDir } = dirOptions("bench-podpath");

requireRoot("bench-podpath", "network namespaces, bridges", 2);
requireExecutables("bench-podpath", [
  [weftDir, ["flannel", "bridge", "host-local"], "weft build (node scripts/build.mjs, or --weft DIR)"],
  [refDir, ["bridge", "host-local"], "reference plugins (containernetworking-plugins)"],
]);

const cnitool = buildCnitool();

const tag = (process.pid % 4096).toString(16);
const octet = 100 + (process.pid % 150);
const work = mkdtempSync(join(tmpdir(), "bench-podpath-"));

/** One network per implementation (see flannelList), the flannel list without its portmap. */
function setup(label, third, sources, asDelegate = false) {
  return flannelList({
    dir: join(work, label),
    label,
    name: `bench-${label}-${tag}`,
    bridge: `wpb${label[0]}${tag}`,
    octet,
    third,
    sources,
    asDelegate,
    portmap: false,
  });
}

const impls = [
  setup("weft", 1, { flannel: weftDir, bridge: weftDir, "host-local": weftDir }),
  setup("reference", 2, { bridge: refDir, "host-local": refDir }, true),
  setup("mixed", 3, { flannel: weftDir, bridge: refDir, "host-local": refDir }),
];

const call = (impl, verb, netns, id) => cnitoolCall(cnitool, impl, verb, netns, id);

const namespaces = netnsPool(`wpn${tag}`);

try {
  // One warm-up pod each: creates the bridges and fills the page cache with every executable.
  for (const impl of impls) {
    const ns = namespaces.add();
    call(impl, "add", ns, "warmup");
    call(impl, "del", ns, "warmup");
  }
  for (let i = 0; i < runs; i++) {
    // Rotate which goes first so drift on a busy machine hits all alike.
    for (const impl of inTurn(impls, i)) {
      const ns = namespaces.add();
      const id = `bench${i}`;
      const add = call(impl, "add", ns, id);
      const del = call(impl, "del", ns, id);
      impl.times.push({ add, del, total: add + del });
    }
  }
  const rows = impls.map((impl) => medianRow(impl, ["add", "del", "total"]));
  console.log(`flannel list without portmap through libcni, ADD+DEL, ${runs} runs each (median ms)`);
  console.log(
    "  weft:      weft flannel -> weft bridge -> weft host-local (one executable, delegates in-process)",
  );
  console.log(
    "  reference: reference bridge -> host-local with flannel's delegate config (no flannel: not in Debian)",
  );
  console.log("  mixed:     weft flannel -> reference bridge -> host-local");
  console.log("impl        ADD      DEL      ADD+DEL");
  for (const r of rows) {
    console.log(`${r.label.padEnd(10)} ${fmtMs(r.add, 6)}  ${fmtMs(r.del, 6)}  ${fmtMs(r.total, 8)}`);
  }
  console.log(`ratio weft/reference: ${(rows[0].total / rows[1].total).toFixed(2)}x (target <= 1.6x)`);
  console.log(`ratio weft/mixed:     ${(rows[0].total / rows[2].total).toFixed(2)}x`);
} finally {
  namespaces.removeAll();
  for (const impl of impls) spawnSync("ip", ["link", "del", impl.bridge]);
  rmSync(work, { recursive: true, force: true });
}
