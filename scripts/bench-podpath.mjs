#!/usr/bin/env node
// ADD+DEL of one pod through the flannel list without port mappings, driven by libcni (the cnitool
// client) as a runtime drives it, three chains interleaved in one run. Prints medians and ratios
// (target: weft at most 1.6x the reference).
//
//   node scripts/bench-podpath.mjs [--runs N] [--weft DIR] [--ref DIR]
//
//   weft       flannel -> bridge -> host-local, all weft (--weft / $WEFT_BIN_DIR / dist/bin): links to one
//              executable, so flannel runs its delegates in-process.
//   reference  Debian's bridge + host-local (/usr/lib/cni) given the delegate config flannel writes for
//              the same subnet.env, as a one-plugin list. Debian ships no flannel plugin (upstream dropped
//              it in v1.0.0), so the reference flannel's own few ms (a Go process start, the config
//              rebuild, one file write) are not in this figure; the ratio is therefore conservative.
//   mixed      weft's flannel delegating to the reference bridge + host-local: the drop-in case of a node
//              that replaced only flannel. It includes one weft process start.
// Each timed iteration is two cnitool runs (add, del), so libcni's own cost is in every figure.
// Needs root: network namespaces, three bridges, temp dirs; all removed at the end.
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
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
  console.error("bench-podpath: needs root (network namespaces, bridges)");
  process.exit(2);
}
for (const [dir, names, what] of [
  [weftDir, ["flannel", "bridge", "host-local"], "weft build (node scripts/build.mjs, or --weft DIR)"],
  [refDir, ["bridge", "host-local"], "reference plugins (containernetworking-plugins)"],
]) {
  const missing = names.filter((n) => !existsSync(join(dir, n)));
  if (missing.length) {
    console.error(`bench-podpath: no ${missing.join(", ")} in ${dir}: ${what}`);
    process.exit(2);
  }
}

const cnitool = execFileSync(
  "bash",
  [join(root, "test", "tools", "cnitool", "build.sh"), join(root, "build", "tools", "cnitool")],
  { encoding: "utf8" },
).trim();

const tag = (process.pid % 4096).toString(16);
const octet = 100 + (process.pid % 150);
const work = mkdtempSync(join(tmpdir(), "bench-podpath-"));

/**
 * One network per implementation: its own subnet (10.<octet>.<third>.0/24, so the bridges never share a
 * route), subnet.env, conflist dir, CNI_PATH, bridge and data dirs.
 */
function setup(label, third, sources, asDelegate = false) {
  const dir = join(work, label);
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(dir, "subnet.env"),
    `FLANNEL_NETWORK=10.${octet}.0.0/16\nFLANNEL_SUBNET=10.${octet}.${third}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  );
  for (const [name, from] of Object.entries(sources)) symlinkSync(join(from, name), join(bin, name));
  const list = JSON.parse(readFileSync(join(root, "conflists", "10-flannel.conflist"), "utf8"));
  list.name = `bench-${label}-${tag}`;
  list.plugins = list.plugins.filter((p) => p.type !== "portmap");
  const bridge = `wpb${label[0]}${tag}`;
  Object.assign(list.plugins[0], {
    subnetFile: join(dir, "subnet.env"),
    dataDir: join(dir, "flannel"),
    delegate: { ...list.plugins[0].delegate, bridge },
    ipam: { dataDir: join(dir, "ipam") },
  });
  if (asDelegate) {
    // What flannel saves and hands to bridge for this subnet.env (see plugins/flannel/README.md).
    const f = list.plugins[0];
    list.plugins = [
      {
        type: "bridge",
        ...f.delegate,
        ipMasq: false,
        isGateway: true,
        mtu: 1450,
        ipam: {
          type: "host-local",
          dataDir: f.ipam.dataDir,
          ranges: [[{ subnet: `10.${octet}.${third}.0/24` }]],
          routes: [{ dst: `10.${octet}.0.0/16` }],
        },
      },
    ];
  }
  mkdirSync(join(dir, "net.d"));
  writeFileSync(join(dir, "net.d", "10-flannel.conflist"), JSON.stringify(list));
  return {
    label,
    bridge,
    times: [],
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      NETCONFPATH: join(dir, "net.d"),
      CNI_PATH: bin,
      CNI_CACHE_DIR: join(dir, "cache"),
    },
    name: list.name,
  };
}

const impls = [
  setup("weft", 1, { flannel: weftDir, bridge: weftDir, "host-local": weftDir }),
  setup("reference", 2, { bridge: refDir, "host-local": refDir }, true),
  setup("mixed", 3, { flannel: weftDir, bridge: refDir, "host-local": refDir }),
];

function call(impl, verb, netns, id) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cnitool, [verb, impl.name, netns], {
    env: { ...impl.env, CNI_CONTAINERID: id },
    encoding: "utf8",
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${impl.label} ${verb} failed: ${r.stdout}${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const namespaces = [];
function newNetns() {
  const name = `wpn${tag}${namespaces.length.toString(36)}`;
  execFileSync("ip", ["netns", "add", name]);
  namespaces.push(name);
  return `/var/run/netns/${name}`;
}

try {
  // One warm-up pod each: creates the bridges and fills the page cache with every executable.
  for (const impl of impls) {
    const ns = newNetns();
    call(impl, "add", ns, "warmup");
    call(impl, "del", ns, "warmup");
  }
  for (let i = 0; i < runs; i++) {
    // Rotate which goes first so drift on a busy machine hits all alike.
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(i + k) % impls.length];
      const ns = newNetns();
      const id = `bench${i}`;
      const add = call(impl, "add", ns, id);
      const del = call(impl, "del", ns, id);
      impl.times.push({ add, del, total: add + del });
    }
  }
  const rows = impls.map((impl) => ({
    label: impl.label,
    add: median(impl.times.map((t) => t.add)),
    del: median(impl.times.map((t) => t.del)),
    total: median(impl.times.map((t) => t.total)),
  }));
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
    console.log(
      `${r.label.padEnd(10)} ${r.add.toFixed(1).padStart(6)}  ${r.del.toFixed(1).padStart(6)}  ${r.total.toFixed(1).padStart(8)}`,
    );
  }
  console.log(`ratio weft/reference: ${(rows[0].total / rows[1].total).toFixed(2)}x (target <= 1.6x)`);
  console.log(`ratio weft/mixed:     ${(rows[0].total / rows[2].total).toFixed(2)}x`);
} finally {
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns]);
  for (const impl of impls) spawnSync("ip", ["link", "del", impl.bridge]);
  rmSync(work, { recursive: true, force: true });
}
