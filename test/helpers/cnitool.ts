import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fastpathEnv } from "./fastpath.js";
import { pluginRunOf } from "./plugin.js";
import { spawnAsync } from "./spawn-async.js";

/**
 * The libcni test client (test/tools/cnitool/main.go): built on demand from Debian's golang-go and
 * golang-github-appc-cni-dev (GOPATH mode, offline) into a cache dir, rebuilt only when its source, libcni
 * or the Go toolchain changes, then run like upstream cnitool. Tests drive whole conflists through it, as
 * kubelet/containerd would.
 */

/** The checkout: WEFT_REPO_ROOT, else the first directory up from here or the cwd holding the tool source. */
export function repoRoot(): string {
  const marker = join("test", "tools", "cnitool", "main.go");
  if (process.env.WEFT_REPO_ROOT) return resolve(process.env.WEFT_REPO_ROOT);
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, marker))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(`cannot find the weft checkout (no ${marker}); set WEFT_REPO_ROOT`);
}

/** Where built tools live: WEFT_TOOLS_DIR, default <repo>/build/tools (build/ is git-ignored). */
export function toolsDir(): string {
  return resolve(process.env.WEFT_TOOLS_DIR ?? join(repoRoot(), "build", "tools"));
}

const built = new Map<string, string>();

/**
 * A Go test client of test/tools (`cnitool`, `gocni`), built first by its build.sh (which shares
 * test/tools/build-go.sh) into <toolsDir>/<name> when missing or out of date; once per process.
 */
export function goToolPath(name: string): string {
  const known = built.get(name);
  if (known) return known;
  const script = join(repoRoot(), "test", "tools", name, "build.sh");
  let path: string;
  try {
    path = execFileSync("bash", [script, join(toolsDir(), name)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(`building ${name} failed: ${(err as Error).message}\n${stderr}`);
  }
  built.set(name, path);
  return path;
}

/** The cnitool binary, built first (test/tools/cnitool/build.sh) when missing or out of date. */
export function cnitoolPath(): string {
  return goToolPath("cnitool");
}

export type CnitoolVerb = "add" | "check" | "del" | "gc" | "status";

export interface CnitoolOptions {
  /** NETCONFPATH: the directory holding the conflist. */
  confDir: string;
  /** CNI_PATH (one directory or a colon list). */
  cniPath: string;
  /** CNI_CACHE_DIR: keep libcni's result cache private to the test. */
  cacheDir?: string;
  /** CNI_CONTAINERID; by default cnitool derives `cnitool-<hash of the netns path>`. */
  containerId?: string;
  /** CNI_IFNAME, default eth0. */
  ifname?: string;
  /** CNI_ARGS, e.g. "IgnoreUnknown=1;K8S_POD_NAME=x". */
  args?: string;
  /** CAP_ARGS: capability arguments, e.g. { portMappings: [...] }. */
  capArgs?: Record<string, unknown>;
  /** gc only: the attachments that are still valid. */
  validAttachments?: Array<{ containerID: string; ifname: string }>;
  env?: Record<string, string>;
  /**
   * Run the client (and so the plugins it starts) inside this network namespace, entered with
   * `nsenter --net=` as setns() callers do: /sys is NOT remounted, so it still shows the test's namespace.
   */
  clientNetns?: string;
}

export interface CnitoolRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout as JSON: the result on a successful add, the plugin's CNI error object on failure. */
  json: Record<string, unknown> | undefined;
}

/** The command line and environment of `cnitool <verb> <netName> [netns]` with options `o`. */
function cnitoolCommand(
  verb: CnitoolVerb,
  netName: string,
  netns: string | undefined,
  o: CnitoolOptions,
): { file: string; args: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    // From another namespace the caller names its node's daemon in o.env (PodPath does).
    ...(o.clientNetns ? {} : fastpathEnv()),
    ...o.env,
  };
  for (const k of [
    "CNI_CONTAINERID",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CAP_ARGS",
    "CNI_CACHE_DIR",
    "CNI_VALID_ATTACHMENTS",
  ]) {
    delete env[k];
  }
  env.NETCONFPATH = o.confDir;
  env.CNI_PATH = o.cniPath;
  if (o.cacheDir) env.CNI_CACHE_DIR = o.cacheDir;
  if (o.containerId) env.CNI_CONTAINERID = o.containerId;
  if (o.ifname) env.CNI_IFNAME = o.ifname;
  if (o.args) env.CNI_ARGS = o.args;
  if (o.capArgs) env.CAP_ARGS = JSON.stringify(o.capArgs);
  if (o.validAttachments) env.CNI_VALID_ATTACHMENTS = JSON.stringify(o.validAttachments);
  const argv = [verb, netName, ...(netns !== undefined ? [netns] : [])];
  return o.clientNetns
    ? { file: "nsenter", args: [`--net=${o.clientNetns}`, "--", cnitoolPath(), ...argv], env }
    : { file: cnitoolPath(), args: argv, env };
}

/** Runs `cnitool <verb> <netName> [netns]` and returns its output; never throws for a failed verb. */
export function cnitool(
  verb: CnitoolVerb,
  netName: string,
  netns: string | undefined,
  o: CnitoolOptions,
): CnitoolRun {
  const { file, args, env } = cnitoolCommand(verb, netName, netns, o);
  return pluginRunOf(spawnSync(file, args, { env, encoding: "utf8" }));
}

/** cnitool() without blocking this process: for calls that run side by side, or while a test acts. */
export function cnitoolAsync(
  verb: CnitoolVerb,
  netName: string,
  netns: string | undefined,
  o: CnitoolOptions,
): Promise<CnitoolRun> {
  const { file, args, env } = cnitoolCommand(verb, netName, netns, o);
  return spawnAsync(file, args, { env }).then(pluginRunOf);
}

/** The container ID upstream cnitool derives from a netns path: "cnitool-" + hex(sha512(path)[:10]). */
export function cnitoolContainerId(netnsPath: string): string {
  return `cnitool-${createHash("sha512").update(resolve(netnsPath)).digest("hex").slice(0, 20)}`;
}
