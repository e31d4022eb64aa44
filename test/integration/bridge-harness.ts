import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { uniqueName } from "../helpers/names.js";
import { TestNetns } from "../helpers/netns.js";
import { type PluginRun, pluginRunOf } from "../helpers/plugin.js";

/**
 * What the bridge integration tests share: which executables run (weft's packaged `bridge` from
 * WEFT_BIN_DIR or dist/bin when built, else the compiled multi-call entry behind a wrapper script named
 * `bridge`), one CNI_PATH directory per harness, unique bridge/network names, subnets private to the test
 * file, and the cleanup of everything created.
 */

export const REFERENCE_DIR = "/usr/lib/cni";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = resolve(here, "..", "..", "..");

export type Outcome = PluginRun;

export interface Call {
  netns?: string;
  containerId?: string;
  ifname?: string;
  args?: string;
  env?: Record<string, string>;
}

export type Verb = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC";

/** A directory usable as CNI_PATH holding `bridge` and `host-local`. */
function weftPluginDir(): { dir: string; temp: boolean } {
  const packaged = resolve(process.env.WEFT_BIN_DIR ?? join(root, "dist", "bin"));
  if (existsSync(join(packaged, "bridge")) && existsSync(join(packaged, "host-local"))) {
    return { dir: packaged, temp: false };
  }
  const multicall = resolve(here, "..", "..", "cli", "multicall.js");
  const dir = mkdtempSync(join(tmpdir(), "weft-br-bin-"));
  for (const name of ["bridge", "host-local"]) {
    const exe = join(dir, name);
    writeFileSync(
      exe,
      `#!/bin/sh\nWEFT_MULTICALL_NAME=${name} exec ${JSON.stringify(process.execPath)} ${JSON.stringify(multicall)} "$@"\n`,
    );
    chmodSync(exe, 0o755);
  }
  return { dir, temp: true };
}

/** A CNI_PATH directory with the reference bridge and host-local (symlinks into /usr/lib/cni). */
function referencePluginDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "weft-br-ref-"));
  for (const name of ["bridge", "host-local"]) symlinkSync(join(REFERENCE_DIR, name), join(dir, name));
  return dir;
}

export function run(exe: string, cniPath: string, verb: Verb, call: Call, conf: object | string): Outcome {
  const env: Record<string, string> = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: verb,
    CNI_PATH: cniPath,
    ...(call.containerId !== undefined ? { CNI_CONTAINERID: call.containerId } : {}),
    ...(call.netns !== undefined ? { CNI_NETNS: call.netns } : {}),
    ...(call.ifname !== undefined ? { CNI_IFNAME: call.ifname } : {}),
    ...(call.args !== undefined ? { CNI_ARGS: call.args } : {}),
    ...(call.env ?? {}),
  };
  const input = typeof conf === "string" ? conf : JSON.stringify(conf);
  const r = spawnSync(exe, [], { env, input, encoding: "utf8" });
  return pluginRunOf(r);
}

export interface ConfOptions {
  cniVersion?: string;
  subnets?: string[];
  routes?: Array<{ dst: string; gw?: string }>;
  ipamType?: string;
  extra?: Record<string, unknown>;
}

export class BridgeHarness {
  readonly name = uniqueName("wbn");
  readonly bridge = uniqueName("wbr");
  readonly dataDir = mkdtempSync(join(tmpdir(), "weft-br-ipam-"));
  readonly weftDir: string;
  readonly refDir: string;
  private readonly tempDirs: string[] = [];
  private readonly pods: TestNetns[] = [];
  private readonly extraLinks: string[] = [];

  constructor() {
    const w = weftPluginDir();
    this.weftDir = w.dir;
    if (w.temp) this.tempDirs.push(w.dir);
    this.refDir = referencePluginDir();
    this.tempDirs.push(this.refDir);
  }

  /** A bridge config with host-local in this harness's data dir. */
  conf(o: ConfOptions = {}): Record<string, unknown> {
    return {
      cniVersion: o.cniVersion ?? "1.0.0",
      name: this.name,
      type: "bridge",
      bridge: this.bridge,
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      mtu: 1450,
      ipam: {
        type: o.ipamType ?? "host-local",
        dataDir: this.dataDir,
        ranges: (o.subnets ?? []).map((subnet) => [{ subnet }]),
        routes: o.routes ?? [],
      },
      ...(o.extra ?? {}),
    };
  }

  pod(): TestNetns {
    const ns = TestNetns.create("wbp");
    this.pods.push(ns);
    return ns;
  }

  /** weft's bridge. */
  weft(verb: Verb, call: Call, conf: object | string, cniPath = this.weftDir): Outcome {
    return run(join(this.weftDir, "bridge"), cniPath, verb, call, conf);
  }

  /** The reference bridge (with the reference host-local). */
  ref(verb: Verb, call: Call, conf: object | string): Outcome {
    return run(join(this.refDir, "bridge"), this.refDir, verb, call, conf);
  }

  /** Remembers a host link to delete at cleanup (one the test made itself). */
  ownLink(name: string): void {
    this.extraLinks.push(name);
  }

  /** Files in host-local's directory for this network, without lock and last_reserved_ip.*. */
  reservations(): string[] {
    try {
      return readdirSync(join(this.dataDir, this.name)).filter(
        (f) => f !== "lock" && !f.startsWith("last_reserved_ip"),
      );
    } catch {
      return [];
    }
  }

  /** Host links attached to this harness's bridge. */
  ports(): string[] {
    try {
      return readdirSync(`/sys/class/net/${this.bridge}/brif`);
    } catch {
      return [];
    }
  }

  cleanup(): void {
    for (const p of this.pods) p.delete();
    for (const l of [...this.extraLinks, this.bridge])
      spawnSync("ip", ["link", "del", l], { stdio: "ignore" });
    rmSync(this.dataDir, { recursive: true, force: true });
    for (const d of this.tempDirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Each test gets its own bridge, network name, data dir and pods, removed afterwards. */
export function withHarness(fn: (h: BridgeHarness) => void): () => void {
  return () => {
    const h = new BridgeHarness();
    try {
      fn(h);
    } finally {
      h.cleanup();
    }
  };
}

/**
 * /24s private to one test file in this process: 10.<pid-derived>.<base + n>.0/24 (the third octet starts
 * at 200 + 10 * fileIndex so files of the same run never overlap).
 */
export function subnet(fileIndex: number, n: number): string {
  return `10.${100 + (process.pid % 150)}.${200 + fileIndex * 10 + n}.0/24`;
}

export function subnet6(fileIndex: number, n: number): string {
  return `fd${(process.pid % 256).toString(16).padStart(2, "0")}:${(200 + fileIndex * 10 + n).toString(16)}::/64`;
}

/** `ip -j` in the host, parsed. */
export function hostJson<T = unknown>(args: string[]): T {
  return JSON.parse(execFileSync("ip", ["-j", ...args], { encoding: "utf8" }) || "[]") as T;
}

/** The nat table as iptables-save prints it, or "" when iptables is unusable. */
export function natRules(family: 4 | 6 = 4): string {
  try {
    return execFileSync(family === 4 ? "iptables-save" : "ip6tables-save", ["-t", "nat"], {
      encoding: "utf8",
    });
  } catch {
    return "";
  }
}
