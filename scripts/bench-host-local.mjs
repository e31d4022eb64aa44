#!/usr/bin/env node
// One host-local ADD, then its DEL, each run as its own process the way a runtime calls IPAM: weft's
// host-local against the reference Go plugin, same config, same data directory, in the same run. The
// subjects take turns in every round so machine noise hits them alike. Prints medians (and p90).
//
//   node scripts/bench-host-local.mjs [--runs N] [--warmup N] [--exe PATH] [--ref PATH] [--dual]
//
// --exe defaults to host-local in $WEFT_BIN_DIR, $WEFT_DIST or dist/bin (`npm run build`); without a
// packaged build it falls back to the compiled multi-call entry (build/cli/multicall.js, `npm run
// compile`), run with the current node, which the table then says. --dual benchmarks a dual-stack config.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fmtMs, interpolated, parseOptions, REF_DIR, root, timedSpawn, weftBinDir } from "./lib/bench.mjs";

function parseArgs(argv) {
  return parseOptions(
    "bench-host-local",
    argv,
    { runs: 30, warmup: 3, exe: undefined, ref: join(REF_DIR, "host-local"), dual: false },
    {
      "--warmup": ["warmup", "number"],
      "--exe": ["exe", "path"],
      "--ref": ["ref", "string"],
      "--dual": ["dual", true],
    },
  );
}

/** The executable to measure, and a label saying what it is. */
function weftExecutable(opts, scratch) {
  if (opts.exe) return { exe: opts.exe, label: opts.exe };
  const packaged = join(weftBinDir(), "host-local");
  if (existsSync(packaged)) return { exe: packaged, label: `${packaged} (packaged)` };
  const multicall = join(root, "build", "cli", "multicall.js");
  if (!existsSync(multicall))
    throw new Error(`no ${packaged} and no ${multicall}: npm run build (or compile) first`);
  const exe = join(scratch, "host-local");
  writeFileSync(
    exe,
    `#!/bin/sh\nWEFT_MULTICALL_NAME=host-local exec ${JSON.stringify(process.execPath)} ${JSON.stringify(multicall)} "$@"\n`,
  );
  chmodSync(exe, 0o755);
  return { exe, label: `node ${process.version} ${multicall} (not packaged)` };
}

/** ADD needs a netns path that is not the plugin's own: a scratch netns as root, else the override. */
function benchNetns() {
  const name = `weft-bench-hl-${process.pid}`;
  if (process.getuid?.() === 0 && spawnSync("ip", ["netns", "add", name]).status === 0) {
    return {
      path: `/var/run/netns/${name}`,
      env: {},
      cleanup: () => spawnSync("ip", ["netns", "del", name]),
    };
  }
  return { path: "/proc/self/ns/net", env: { CNI_NETNS_OVERRIDE: "1" }, cleanup: () => undefined };
}

function call(exe, command, id, conf, netns) {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_IFNAME: "eth0",
    CNI_NETNS: netns.path,
    CNI_PATH: dirname(exe),
    ...netns.env,
  };
  const { r, ms, cpu } = timedSpawn(exe, [], { env, input: conf });
  if (r.status !== 0) throw new Error(`${exe} ${command} ${id} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return { ms, cpu };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), "weft-bench-hl-"));
  const netns = benchNetns();
  try {
    const weft = weftExecutable(opts, scratch);
    const ranges = [[{ subnet: "10.213.0.0/16" }]];
    if (opts.dual) ranges.push([{ subnet: "fd00:213::/64" }]);
    const conf = JSON.stringify({
      cniVersion: "1.0.0",
      name: "bench",
      type: "host-local",
      ipam: { type: "host-local", dataDir: join(scratch, "data"), ranges },
    });
    const subjects = [
      { name: "weft", exe: weft.exe, add: [], del: [], version: [], cpu: { add: 0, del: 0, version: 0 } },
      {
        name: "reference",
        exe: opts.ref,
        add: [],
        del: [],
        version: [],
        cpu: { add: 0, del: 0, version: 0 },
      },
    ];
    for (let round = 0; round < opts.warmup + opts.runs; round++) {
      for (const s of subjects) {
        const id = `bench-${s.name}-${round}`;
        const add = call(s.exe, "ADD", id, conf, netns);
        const del = call(s.exe, "DEL", id, conf, netns);
        // VERSION does no IPAM work: the process start-up floor of the same executable.
        const version = call(s.exe, "VERSION", id, "", netns);
        if (round >= opts.warmup) {
          for (const [k, v] of Object.entries({ add, del, version })) {
            s[k].push(v.ms);
            s.cpu[k] += v.cpu;
          }
        }
      }
    }
    const fmt = fmtMs;
    const quantile = interpolated;
    process.stdout.write(
      `host-local ADD/DEL as separate processes, ${opts.runs} runs (+${opts.warmup} warm-up), ${opts.dual ? "dual-stack" : "IPv4 /16"}\n` +
        `weft: ${weft.label}\nreference: ${opts.ref}\n\n` +
        "wall-clock median / p90 and mean CPU (user+sys of the plugin and its children), in ms\n" +
        `subject      ADD med  ADD p90  ADD cpu  DEL med  DEL p90  DEL cpu  ADD+DEL med  VERSION med\n`,
    );
    const n = opts.runs;
    for (const s of subjects) {
      const both = s.add.map((a, i) => a + s.del[i]);
      process.stdout.write(
        `${s.name.padEnd(11)}${fmt(quantile(s.add, 0.5))}  ${fmt(quantile(s.add, 0.9))}  ${fmt(s.cpu.add / n)}  ` +
          `${fmt(quantile(s.del, 0.5))}  ${fmt(quantile(s.del, 0.9))}  ${fmt(s.cpu.del / n)}  ` +
          `${fmt(quantile(both, 0.5)).padStart(11)}  ${fmt(quantile(s.version, 0.5)).padStart(11)}\n`,
      );
    }
  } finally {
    netns.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main();
