#!/usr/bin/env node
// `npm run bench`: every benchmark script, one after the other, each comparing weft with the reference Go
// plugins in the same run. Each script prints its own table; this only sequences them.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const benches = [
  "bench-startup.mjs",
  "bench-host-local.mjs",
  "bench-bridge.mjs",
  "bench-podpath.mjs",
  "bench-portmap.mjs",
  "bench-fastpath.mjs",
  "bench-spawn.mjs",
  "bench-overlay.mjs",
];
let failed = 0;
for (const b of benches) {
  const path = join(here, b);
  if (!existsSync(path)) continue;
  process.stdout.write(`\n== ${b}\n`);
  const r = spawnSync(process.execPath, [path, ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
