/**
 * Running the plugin suites through weftd's resident fast path. With WEFT_TEST_FASTPATH=1 every plugin
 * a test executes (cnitool, go-cni, runPlugin) finds a weftd serving its network namespace: one
 * `weftd --cni-only` in the host namespace for the whole test process, one per node namespace a
 * PodPath runs its pods from, and one per namespace a test runs a plugin in directly (fastpathEnvIn).
 * WEFT_CNI_SOCKET_DEBUG (set for the whole test process) makes every weft executable that does the work
 * itself say why on stderr; the helpers count those lines (noteFallbacks), and at exit the process says
 * how many calls the daemons served and fails when they served none or when a call fell back without
 * the test opting it out (WEFT_CNI_SOCKET=off, with a comment saying why).
 * Without WEFT_TEST_FASTPATH the suites run the executables alone (the fallback path: no socket).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./cnitool.js";

export const FASTPATH = process.env.WEFT_TEST_FASTPATH === "1";

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const running = new Set<CniDaemon>();
let servedBefore = 0;

/** `weftd --cni-only` on a socket of its own, in the host namespace or a named one. */
export class CniDaemon {
  readonly dir: string;
  readonly socket: string;
  private readonly child: ChildProcess;

  constructor(netns?: string) {
    this.dir = mkdtempSync(join(tmpdir(), "weft-cnid-"));
    this.socket = join(this.dir, "cni.sock");
    const subnetFile = join(this.dir, "subnet.env");
    writeFileSync(subnetFile, "");
    const weftd = join(process.env.WEFT_BIN_DIR ?? join(repoRoot(), "dist", "bin"), "weftd");
    const args = [`--cni-only`, `--cni-socket=${this.socket}`, `--subnet-file=${subnetFile}`];
    const cmd = netns ? ["ip", ["netns", "exec", netns, weftd, ...args]] : [weftd, args];
    // The log goes to a file: the tests block their event loop in spawnSync while the daemon serves the
    // very call, so a pipe read by this process would fill up and stall the daemon.
    this.logFile = join(this.dir, "weftd.log");
    const fd = openSync(this.logFile, "a");
    this.child = spawn(cmd[0] as string, cmd[1] as string[], {
      stdio: ["ignore", "ignore", fd],
      env: { ...process.env, WEFT_LOG_STDERR_LEVEL: "debug" },
    });
    closeSync(fd);
    // The test process ends when its tests do; the exit handler below stops the daemon then.
    this.child.unref();
    running.add(this);
    for (let i = 0; i < 500 && !existsSync(this.socket); i++) sleepMs(10);
    if (!existsSync(this.socket)) {
      this.stop();
      throw new Error(`weftd --cni-only did not serve ${this.socket}: ${this.log()}`);
    }
  }

  readonly logFile: string;

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** Calls served so far (weftd logs each at debug level). */
  served(): number {
    return (this.log().match(/served a CNI call/g) ?? []).length;
  }

  stop(): void {
    if (!running.delete(this)) return;
    servedBefore += this.served();
    this.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let host: CniDaemon | undefined;

/** The environment a plugin call from the host namespace gets: the host daemon's socket when enabled. */
export function fastpathEnv(): Record<string, string> {
  if (!FASTPATH) return {};
  host ??= new CniDaemon();
  return { WEFT_CNI_SOCKET: host.socket, WEFT_CNI_SOCKET_DEBUG: "1" };
}

/** The same for a node namespace: a daemon of its own, stopped with its stop(). */
export function nodeDaemon(netns: string): CniDaemon | undefined {
  return FASTPATH ? new CniDaemon(netns) : undefined;
}

const inNetns = new Map<string, CniDaemon>();

/**
 * The environment for a plugin a test runs inside the named namespace itself (`ip netns exec`): a
 * daemon of that namespace's own, started on first use; stop it with stopDaemonIn() before deleting the
 * namespace. Empty without WEFT_TEST_FASTPATH.
 */
export function fastpathEnvIn(netns: string): Record<string, string> {
  if (!FASTPATH) return {};
  let d = inNetns.get(netns);
  if (!d) {
    d = new CniDaemon(netns);
    inNetns.set(netns, d);
  }
  return { WEFT_CNI_SOCKET: d.socket, WEFT_CNI_SOCKET_DEBUG: "1" };
}

export function stopDaemonIn(netns: string): void {
  inNetns.get(netns)?.stop();
  inNetns.delete(netns);
}

/** Why plugin calls were not served, by reason (the clients' WEFT_CNI_SOCKET_DEBUG lines). */
const fellBack = new Map<string, number>();
let optedOut = 0;

/**
 * Counts the calls of a finished run that did not go through a daemon (the "weft: ... not used: ..."
 * lines WEFT_CNI_SOCKET_DEBUG prints). A test opts a call out with WEFT_CNI_SOCKET=off, and says why;
 * any other reason fails the fast-path run at exit: a call the suite meant to serve ran in the client.
 */
export function noteFallbacks(stderr: string): void {
  if (!FASTPATH) return;
  for (const m of stderr.matchAll(/^weft: .* not used: (.*)$/gm)) {
    const why = m[1]!;
    if (/^WEFT_CNI_SOCKET=(off)?$/.test(why)) optedOut += 1;
    else fellBack.set(why, (fellBack.get(why) ?? 0) + 1);
  }
}

if (FASTPATH) {
  // Every weft executable a test starts, from any namespace, says why when it does the work itself.
  process.env.WEFT_CNI_SOCKET_DEBUG = "1";
  process.on("exit", () => {
    for (const d of [...running]) d.stop();
    const fallbacks = [...fellBack.values()].reduce((a, b) => a + b, 0);
    let text = `fast path: weftd served ${servedBefore} CNI calls; ${optedOut} opted out (WEFT_CNI_SOCKET=off); ${fallbacks} fell back\n`;
    for (const [why, n] of fellBack) text += `  ${n} x ${why}\n`;
    process.stderr.write(text);
    if (servedBefore === 0 || fallbacks > 0) process.exitCode = 1;
  });
}
