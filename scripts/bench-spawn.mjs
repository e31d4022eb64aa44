#!/usr/bin/env node
// What starting a kernel tool costs weftd, a Node process of ~70-90 MB: Node forks (libuv's uv_spawn), and
// a fork copies the page tables of everything the process has touched. Compared, in one run and taking
// turns, with the other way issue 11 suggested: a long-lived small helper process that starts the tools
// on request (here a plain Node child over a pipe, one JSON line each way, as weftd would run it).
//
//   node scripts/bench-spawn.mjs [--runs N] [--tool PATH]
//
// Each subject runs in its own Node 22 process (the runtime weft embeds) grown with touched memory to the
// size of a plugin process, of weftd serving calls (72 MB at start, ~82 MB after a few hundred), and of a
// larger weftd. The tool is `ip -V` (an `ip` start without kernel work).
//
// Measured 2026-11-30 on the dev VM (load ~5.6), twice: direct 3.1-3.2 / 4.4 / 5.5-6.1 ms at 56 / 81 /
// 114 MB RSS, through the helper 3.5-3.7 ms at every size. At weftd's size a helper would save ~0.8 ms
// per tool start: weftd starts 3-4 tools per served ADD and per DEL, so ~5 ms of a ~300 ms pod
// lifecycle (~2%). weftd keeps starting its tools itself: run.ts's tools converse over stdin/stdout
// (ip -batch answers read before the rest is written, fd 3 inputs) and flock holds host-local's lock
// through its child's life, all of which a helper would have to relay, for that 2%.
import { spawnSync } from "node:child_process";
import { fmtMs, node22, parseOptions } from "./lib/bench.mjs";

const opts = parseOptions(
  "bench-spawn",
  process.argv.slice(2),
  { runs: 200, tool: "/usr/sbin/ip" },
  { "--tool": ["tool", "path"] },
);

// The subject: grows itself by `mb` MiB (Buffers and small objects, all touched), then alternates a
// direct spawn of the tool with the same spawn through a helper, and prints medians as JSON.
const subject = `
const { spawn } = require("node:child_process");
const { createInterface } = require("node:readline");
const [mb, runs, tool] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
const keep = [];
for (let i = 0; i < mb; i++) keep.push(Buffer.alloc(1 << 20, 1));
for (let i = 0; i < mb * 3000; i++) keep.push({ a: i, b: String(i) });
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
function direct() {
  return new Promise((done) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(tool, ["-V"], { stdio: ["pipe", "pipe", "pipe"] });
    c.stdout.resume(); c.stderr.resume(); c.stdin.on("error", () => {}); c.stdin.end();
    c.on("close", () => done(ms(t0)));
  });
}
const helperCode = \`
const { spawn } = require("node:child_process");
require("node:readline").createInterface({ input: process.stdin }).on("line", (l) => {
  const q = JSON.parse(l);
  const c = spawn(q.cmd, q.args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  c.stdout.on("data", (d) => (out += d)); c.stderr.on("data", (d) => (err += d));
  c.stdin.on("error", () => {}); c.stdin.end(q.input ?? "");
  c.on("close", (code) => process.stdout.write(JSON.stringify({ id: q.id, code, out, err }) + "\\\\n"));
});\`;
const helper = spawn(process.execPath, ["-e", helperCode], { stdio: ["pipe", "pipe", "inherit"] });
const waiting = new Map();
let id = 0;
createInterface({ input: helper.stdout }).on("line", (l) => { const r = JSON.parse(l); waiting.get(r.id)(); waiting.delete(r.id); });
function viaHelper() {
  return new Promise((done) => {
    const t0 = process.hrtime.bigint();
    const q = { id: ++id, cmd: tool, args: ["-V"] };
    waiting.set(q.id, () => done(ms(t0)));
    helper.stdin.write(JSON.stringify(q) + "\\n");
  });
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
(async () => {
  await direct(); await viaHelper();
  const d = [], h = [];
  for (let i = 0; i < runs; i++) { d.push(await direct()); h.push(await viaHelper()); }
  helper.stdin.end();
  process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss / 2 ** 20, direct: med(d), helper: med(h) }));
})();
`;

process.stdout.write(
  `bench-spawn: ${opts.tool} -V started by a Node 22 process of a given size, directly or through a ` +
    `long-lived helper; medians of ${opts.runs}, ms\n`,
);
process.stdout.write(
  `${"size".padEnd(30)} ${"RSS MB".padStart(7)} ${"direct".padStart(7)} ${"helper".padStart(7)}\n`,
);
for (const [label, mb] of [
  ["a plugin process (~55 MB)", 0],
  ["weftd serving (~80 MB)", 17],
  ["a larger weftd (~115 MB)", 40],
]) {
  const r = spawnSync(node22(), ["-e", subject, String(mb), String(opts.runs), opts.tool], {
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`bench-spawn subject failed: ${r.stdout}${r.stderr}`);
  const x = JSON.parse(r.stdout);
  process.stdout.write(
    `${label.padEnd(30)} ${x.rss.toFixed(0).padStart(7)} ${fmtMs(x.direct)} ${fmtMs(x.helper)}\n`,
  );
}
