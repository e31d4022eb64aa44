import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { UnderlayNode } from "./underlay.js";

/**
 * A weftd running in a node namespace (`ip netns exec <node> ...`, which execs in place, so the pid is
 * the daemon's): the built executable, or the compiled daemon with a recording backend
 * (weftd-stub.ts). Its stderr (the log) goes to a file the test reads.
 */
export interface WeftdOptions {
  node: UnderlayNode;
  args: string[];
  /** "stub": node build/test/helpers/weftd-stub.js; else the path of an executable. */
  exe: "stub" | string;
  logFile: string;
  env?: Record<string, string>;
}

const STUB = fileURLToPath(new URL("./weftd-stub.js", import.meta.url));

export class Weftd {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** The exit status once it has exited. */
  code: number | null | undefined;

  constructor(readonly o: WeftdOptions) {
    const cmd = o.exe === "stub" ? [process.execPath, STUB] : [o.exe];
    const fd = openSync(o.logFile, "a");
    try {
      this.child = spawn("ip", ["netns", "exec", o.node.netns.name, ...cmd, ...o.args], {
        stdio: ["ignore", fd, fd],
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...o.env },
      });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code) => {
        this.code = code;
        resolve(code);
      }),
    );
  }

  log(): string {
    try {
      return readFileSync(this.o.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** Sends SIGTERM (or `signal`) and returns the exit status. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /** GET http://<ip>:<port><path> from inside the node: status code and body. */
  http(ip: string, port: number, path: string): { status: number; body: string } {
    const out = this.o.node.netns.exec([
      "curl",
      "-s",
      "-m",
      "2",
      "-w",
      "\n%{http_code}",
      `http://${ip}:${port}${path}`,
    ]);
    const i = out.lastIndexOf("\n");
    return { status: Number(out.slice(i + 1)), body: out.slice(0, i).replace(/\n$/, "") };
  }
}

/** Waits (bounded) until `cond` holds; the deadline only ends a failing test, no timing is asserted. */
export async function until<T>(
  what: string,
  cond: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    let v: T | undefined | false;
    try {
      v = await cond();
    } catch {
      v = undefined;
    }
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a process is still there (after a test, nothing of ours may be). */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    execFileSync("kill", ["-0", String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
