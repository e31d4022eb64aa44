import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type PluginRun, pluginRunOf } from "../helpers/plugin.js";
import { spawnAsync } from "../helpers/spawn-async.js";

/** Helpers shared by the host-local integration tests: which executables to run and how. */

export const REFERENCE = "/usr/lib/cni/host-local";

const here = dirname(fileURLToPath(import.meta.url));
// build/test/integration -> repository root
const root = resolve(here, "..", "..", "..");

/**
 * weft's host-local: the packaged executable when it has been built (`$WEFT_BIN_DIR`, `$WEFT_DIST` or
 * dist/bin), else the compiled multi-call entry next to these tests, through a wrapper named host-local.
 */
export function weftHostLocal(): { exe: string; cleanup: () => void } {
  const binDir = process.env.WEFT_BIN_DIR ?? process.env.WEFT_DIST ?? join(root, "dist", "bin");
  const packaged = resolve(binDir, "host-local");
  if (existsSync(packaged)) return { exe: packaged, cleanup: () => undefined };
  const multicall = resolve(here, "..", "..", "cli", "multicall.js");
  if (!existsSync(multicall)) throw new Error(`neither ${packaged} nor ${multicall} exists: build first`);
  const dir = mkdtempSync(join(tmpdir(), "weft-hl-bin-"));
  const exe = join(dir, "host-local");
  writeFileSync(
    exe,
    `#!/bin/sh\nWEFT_MULTICALL_NAME=host-local exec ${JSON.stringify(process.execPath)} ${JSON.stringify(multicall)} "$@"\n`,
  );
  chmodSync(exe, 0o755);
  return { exe, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Call {
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS";
  containerId?: string;
  ifname?: string;
  netns?: string;
  args?: string;
}

export type Outcome = PluginRun;

/** Runs one plugin call as its own process, asynchronously so that many can race. */
export function callPlugin(exe: string, call: Call, conf: object): Promise<Outcome> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: call.command,
    CNI_PATH: dirname(exe),
  };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  // A hung call (a lock never released) fails the test instead of hanging the suite.
  return spawnAsync(exe, [], { env, input: JSON.stringify(conf), timeoutMs: 120_000 }).then(pluginRunOf);
}

/** A host-local network config in a fresh data dir. */
export function hostLocalConf(
  dataDir: string,
  network: string,
  ranges: Array<Array<Record<string, string>>>,
  cniVersion = "1.0.0",
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion,
    name: network,
    type: "host-local",
    ipam: { type: "host-local", dataDir, ranges },
    ...extra,
  };
}

/** A /24 private to this test process (10.<pid-derived>.<n>.0/24), so concurrent suites never collide. */
export function testSubnet(n: number): string {
  return `10.${100 + (process.pid % 150)}.${n}.0/24`;
}

/**
 * The set-up a host-local test file shares: root, weft's executable, one netns for ADD's CNI_NETNS and
 * fresh data dirs (`dataDir()`, prefix `dirPrefix`), all removed after the file's tests.
 */
export function hostLocalSuite(netnsPrefix: string, dirPrefix: string) {
  assertRoot();
  const weft = weftHostLocal();
  const netns = TestNetns.create(netnsPrefix);
  const dataDirs: string[] = [];
  test.after(() => {
    netns.delete();
    weft.cleanup();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), dirPrefix));
    dataDirs.push(d);
    return d;
  };
  return { weft, netns, dataDir };
}
