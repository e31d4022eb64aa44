#!/usr/bin/env node
// portmap ADD+DEL with one hostPort: weft's portmap (iptables backend, and nftables) against the reference
// Go plugin (/usr/lib/cni/portmap), same prevResult, same run, subjects taking turns every round so machine
// noise hits them alike. Needs root (it installs real nat rules, then removes them).
//
//   node scripts/bench-portmap.mjs [--runs N] [--warmup N] [--exe PATH] [--ref PATH] [--no-nft] [--no-list]
//                                  [--priority N]
//
// On a shared machine, `--priority -10` (root) runs the bench and every subject it starts ahead of
// other work, so neighbours' load distorts both sides less; both sides get the same priority.
//
// The executable defaults to `portmap` in $WEFT_BIN_DIR, $WEFT_DIST or dist/bin (`npm run build`); without
// one, the compiled JS (build/cli/multicall.js, `npm run compile`) stands in and the table says so.
//
// Second table (when the packaged flannel, bridge, host-local and portmap are there; `--no-list` skips it):
// the flannel list with one hostPort through libcni (cnitool), ADD+DEL of a pod, as kubelet drives it:
//   weft       weft flannel (bridge + host-local in-process) -> weft portmap
//   reference  Debian's bridge + host-local with the delegate config flannel writes, then Debian's
//              portmap. Debian ships no flannel plugin, so the reference flannel's own few ms are not in
//              its figure: the ratio is conservative.
// Target: weft at most 0.8x the reference chain.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  buildCnitool,
  cnitoolCall,
  flannelList,
  fmtMs,
  inTurn,
  median,
  medianRow,
  netnsPool,
  parseOptions,
  REF_DIR,
  requireRoot,
  root,
  timedSpawn,
  weftBinDir,
} from "./lib/bench.mjs";

// The reference spends its time in one iptables process per check and rule; weft batches.
const TARGET_RATIO = 0.8;
const LIST_TARGET_RATIO = 0.8;

function parseArgs(argv) {
  return parseOptions(
    "bench-portmap",
    argv,
    {
      runs: 30,
      warmup: 3,
      exe: join(weftBinDir(), "portmap"),
      ref: join(REF_DIR, "portmap"),
      nft: true,
      list: true,
      priority: undefined,
    },
    {
      "--warmup": ["warmup", "number"],
      "--exe": ["exe", "path"],
      "--ref": ["ref", "string"],
      "--no-nft": ["nft", false],
      "--no-list": ["list", false],
      "--priority": ["priority", "number"],
    },
  );
}

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: "utf8" });
}

/** A free 10.N.M.0/24: no route overlaps 10.N/16. */
function freeSubnet() {
  const routes = sh("ip", ["-4", "route", "show", "table", "all"]);
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 151);
    if (!new RegExp(`(^|\\s)10\\.${n}\\.`).test(routes))
      return `10.${n}.${1 + Math.floor(Math.random() * 250)}`;
  }
  throw new Error("no free 10.N.0.0/16");
}

/** weft's executable: the packaged one, else the compiled multi-call JS run by this Node. */
function weftCommand(exe) {
  if (existsSync(exe)) return { file: exe, args: [], env: {}, how: exe };
  const js = join(root, "build", "cli", "multicall.js");
  if (!existsSync(js)) {
    process.stderr.write(`bench-portmap: neither ${exe} nor ${js}; run \`npm run build\` first\n`);
    process.exit(1);
  }
  return {
    file: process.execPath,
    args: [js],
    env: { WEFT_MULTICALL_NAME: "portmap" },
    how: `node ${js} (compiled JS)`,
  };
}

function call(subject, command, cid, conf) {
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    ...subject.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: cid,
    CNI_NETNS: subject.netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
  };
  const { r, ms, cpu } = timedSpawn(subject.file, subject.args, {
    env,
    input: JSON.stringify(conf),
    timeout: 30_000,
  });
  if (r.status !== 0)
    throw new Error(`${subject.label} ${command} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return { ms, cpu };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot("bench-portmap", "real nat rules", 1);
  // Children inherit the nice value: weft and the reference alike.
  if (opts.priority !== undefined) setPriority(opts.priority);
  const weft = weftCommand(opts.exe);
  const base = freeSubnet();
  const link = `wpmb${(process.pid % 46656).toString(36)}`;
  const netns = `wpmbns${(process.pid % 46656).toString(36)}`;
  const hostPort = 30000 + Math.floor(Math.random() * 20000);
  const conf = (backend) => ({
    cniVersion: "1.0.0",
    name: `wpmbench${process.pid}`,
    type: "portmap",
    ...(backend ? { backend } : {}),
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort, containerPort: 80, protocol: "tcp" }] },
    prevResult: {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: `/var/run/netns/${netns}` }],
      ips: [{ address: `${base}.2/24`, gateway: `${base}.1`, interface: 0 }],
    },
  });

  // The host side of a veth into the pod netns owns the pod subnet, so `ip route get <pod>` finds it
  // (route_localnet lands there, not on the host's uplink).
  sh("ip", ["netns", "add", netns]);
  try {
    sh("ip", ["link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    sh("ip", ["addr", "add", `${base}.1/24`, "dev", link]);
    sh("ip", ["link", "set", link, "up"]);
    const nsPath = `/var/run/netns/${netns}`;
    const subjects = [
      { label: "weft portmap (iptables)", ...weft, netns: nsPath, conf: conf(undefined) },
      ...(opts.nft
        ? [{ label: "weft portmap (nftables)", ...weft, netns: nsPath, conf: conf("nftables") }]
        : []),
      {
        label: "reference portmap (Go)",
        file: opts.ref,
        args: [],
        env: {},
        how: opts.ref,
        netns: nsPath,
        conf: conf(undefined),
      },
    ];
    for (const s of subjects) Object.assign(s, { add: [], del: [], total: [], cpu: [] });
    let n = 0;
    for (let i = 0; i < opts.warmup + opts.runs; i++) {
      for (const s of subjects) {
        const cid = `wpmbench-${process.pid}-${n++}`;
        const add = call(s, "ADD", cid, s.conf);
        const del = call(s, "DEL", cid, s.conf);
        if (i < opts.warmup) continue;
        s.add.push(add.ms);
        s.del.push(del.ms);
        s.total.push(add.ms + del.ms);
        s.cpu.push(add.cpu + del.cpu);
      }
    }
    const leftovers = sh("iptables-save", ["-t", "nat"])
      .split("\n")
      .filter((l) => l.includes(`wpmbench${process.pid}`));
    if (leftovers.length) throw new Error(`rules left behind:\n${leftovers.join("\n")}`);

    const ref = subjects.at(-1);
    const refTotal = median(ref.total);
    const refCpu = median(ref.cpu);
    const f = fmtMs;
    process.stdout.write(
      `portmap ADD+DEL, one hostPort (tcp), cniVersion 1.0.0, ${opts.runs} runs after ${opts.warmup} warm-up; medians in ms (wall; CPU = user+sys of the plugin and its tools)\n`,
    );
    process.stdout.write(
      `${"subject".padEnd(26)} ${"ADD".padStart(7)} ${"DEL".padStart(7)} ${"ADD+DEL".padStart(7)}  vs ref ${"CPU".padStart(7)}  vs ref  command\n`,
    );
    for (const s of subjects) {
      const total = median(s.total);
      const cpu = median(s.cpu);
      process.stdout.write(
        `${s.label.padEnd(26)} ${f(median(s.add))} ${f(median(s.del))} ${f(total)}  ${(total / refTotal).toFixed(2).padStart(5)}x ${f(cpu)}  ${(cpu / refCpu).toFixed(2).padStart(5)}x  ${s.how}\n`,
      );
    }
    const ours = median(subjects[0].total) / refTotal;
    process.stdout.write(
      `target: weft (iptables) ADD+DEL <= ${TARGET_RATIO}x the reference: ${ours <= TARGET_RATIO ? "met" : "MISSED"} (${ours.toFixed(2)}x)\n`,
    );
  } finally {
    try {
      sh("ip", ["link", "del", link]);
    } catch {
      // not created
    }
    sh("ip", ["netns", "del", netns]);
  }
  if (opts.list) benchList(opts, dirname(opts.exe));
}

/**
 * The flannel list with one hostPort through libcni, weft against the reference chain (see the header).
 * Each implementation gets its own subnet, bridge, conflist, CNI_PATH and data dirs.
 */
function benchList(opts, binDir) {
  const names = ["flannel", "bridge", "host-local", "portmap"];
  const missing = names.filter((n) => !existsSync(join(binDir, n)));
  if (missing.length) {
    process.stdout.write(
      `\nflannel list: skipped (no packaged ${missing.join(", ")} in ${binDir}; npm run build)\n`,
    );
    return;
  }
  const refDir = dirname(opts.ref);
  const cnitool = buildCnitool();
  const tag = (process.pid % 4096).toString(16);
  const octet = Number(freeSubnet().split(".")[1]);
  const work = mkdtempSync(join(tmpdir(), "bench-portmap-list-"));
  const hostPort = 30000 + Math.floor(Math.random() * 20000);

  const setup = (label, third, sources, asDelegate) =>
    flannelList({
      dir: join(work, label),
      label,
      name: `benchpm-${label}-${tag}`,
      bridge: `wpmlb${label[0]}${tag}`,
      octet,
      third,
      sources,
      asDelegate,
      portmap: true,
      env: {
        CAP_ARGS: JSON.stringify({
          portMappings: [{ hostPort: hostPort + third, containerPort: 80, protocol: "tcp" }],
        }),
      },
    });
  const impls = [
    setup("weft", 1, Object.fromEntries(names.map((n) => [n, binDir])), false),
    setup("reference", 2, { bridge: refDir, "host-local": refDir, portmap: refDir }, true),
  ];
  const cni = (impl, verb, netns, id) => cnitoolCall(cnitool, impl, verb, netns, id, `list ${verb}`);
  const namespaces = netnsPool(`wpmln${tag}`);
  try {
    for (let i = 0; i < opts.warmup + opts.runs; i++) {
      for (const impl of inTurn(impls, i)) {
        const ns = namespaces.add();
        const id = `benchpm${i}`;
        const add = cni(impl, "add", ns, id);
        const del = cni(impl, "del", ns, id);
        if (i >= opts.warmup) impl.times.push({ add, del, total: add + del });
      }
    }
    const rows = impls.map((impl) => medianRow(impl, ["add", "del", "total"]));
    const f = fmtMs;
    process.stdout.write(
      `\nflannel list with one hostPort through libcni, ADD+DEL, ${opts.runs} runs after ${opts.warmup} warm-up (median ms)\n`,
    );
    process.stdout.write(
      "  weft:      weft flannel -> weft bridge -> weft host-local (in-process), then weft portmap\n",
    );
    process.stdout.write(
      "  reference: reference bridge -> host-local (flannel's delegate config), then reference portmap\n",
    );
    process.stdout.write(
      `${"impl".padEnd(10)} ${"ADD".padStart(7)} ${"DEL".padStart(7)} ${"ADD+DEL".padStart(7)}\n`,
    );
    for (const r of rows)
      process.stdout.write(`${r.label.padEnd(10)} ${f(r.add)} ${f(r.del)} ${f(r.total)}\n`);
    const ratio = rows[0].total / rows[1].total;
    process.stdout.write(
      `target: weft list <= ${LIST_TARGET_RATIO}x the reference chain: ${ratio <= LIST_TARGET_RATIO ? "met" : "MISSED"} (${ratio.toFixed(2)}x)\n`,
    );
  } finally {
    namespaces.removeAll();
    for (const impl of impls) spawnSync("ip", ["link", "del", impl.bridge]);
    rmSync(work, { recursive: true, force: true });
  }
}

main();
