import { spawn } from "node:child_process";

/**
 * The one place kernel tools (ip, iptables-restore, nft, sysctl, conntrack) are started from. A call can
 * run inside a pod's network namespace, entered with nsenter so any netns path works (/proc/<pid>/ns/net,
 * /var/run/netns/<name>).
 */
export interface RunOptions {
  input?: string;
  /** Path of a network namespace to run the command in. */
  netns?: string;
  /** Return a failing result instead of throwing. */
  allowFail?: boolean;
  /** A second input, on the command's fd 3 (a pipe, closed after writing). */
  fd3Input?: string;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super(`${command} failed (exit ${result.exitCode}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = "CommandError";
  }
}

/**
 * A started command whose input is written as the caller goes, for a conversation with a batch tool:
 * write some commands, wait for their answers on stdout, decide, write the rest.
 */
export interface Running {
  /** Writes to stdin (0) or to fd 3 (when started with `fd3`). */
  write(fd: 0 | 3, text: string): void;
  /** Closes stdin or fd 3. */
  end(fd: 0 | 3): void;
  /**
   * Resolves true once `ready(stdout so far)` holds, false if the command closed its output first (then
   * `done` has the outcome).
   */
  until(ready: (stdout: string) => boolean): Promise<boolean>;
  /** The outcome, once the command exited (never rejects: see `exitCode`). */
  done: Promise<RunResult>;
}

/**
 * Started with node:child_process rather than execa (which invoke.ts uses for delegate plugins): an ADD
 * runs two to four of these, and execa's load and first call cost ~75 ms of ADD+DEL on the pod path
 * (bench-bridge, same run: 421 -> 346 ms), more than the rest of the plugin's own work.
 */
export function start(cmd: string, args: string[], opts: { netns?: string; fd3?: boolean } = {}): Running {
  const [file, argv] = opts.netns ? ["nsenter", [`--net=${opts.netns}`, "--", cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    env: { ...process.env, LC_ALL: "C" },
    stdio: opts.fd3 ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let stdout = "";
  let closed = false;
  let spawnError: Error | undefined;
  const waiters: Array<{ ready: (s: string) => boolean; resolve: (ok: boolean) => void }> = [];
  const wake = () => {
    for (const w of [...waiters]) {
      const ok = w.ready(stdout);
      if (ok || closed) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(ok);
      }
    }
  };
  child.stdout.on("data", (d: Buffer) => {
    out.push(d);
    if (waiters.length > 0) {
      stdout = Buffer.concat(out).toString("utf8");
      wake();
    }
  });
  child.stderr.on("data", (d: Buffer) => err.push(d));
  child.on("error", (e) => {
    spawnError = e;
  });
  const inputs: Record<0 | 3, NodeJS.WritableStream> = {
    0: child.stdin,
    3: (child.stdio[3] as NodeJS.WritableStream | null) ?? child.stdin,
  };
  // A tool that exits without reading its input must not turn into an EPIPE crash.
  for (const s of new Set(Object.values(inputs))) s.on("error", () => undefined);
  const done = new Promise<RunResult>((resolve) => {
    child.on("close", (code) => {
      closed = true;
      stdout = Buffer.concat(out).toString("utf8");
      wake();
      resolve({
        exitCode: typeof code === "number" ? code : 127,
        stdout,
        stderr: Buffer.concat(err).toString("utf8") || (spawnError?.message ?? ""),
      });
    });
  });
  return {
    write: (fd, text) => {
      if (!closed) inputs[fd].write(text);
    },
    end: (fd) => inputs[fd].end(),
    until: (ready) => {
      stdout = Buffer.concat(out).toString("utf8");
      if (ready(stdout)) return Promise.resolve(true);
      if (closed) return Promise.resolve(false);
      return new Promise((resolve) => waiters.push({ ready, resolve }));
    },
    done,
  };
}

/** Runs a command to its end with all its input given at once. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const fd3 = opts.fd3Input !== undefined;
  const p = start(cmd, args, { ...(opts.netns ? { netns: opts.netns } : {}), fd3 });
  p.write(0, opts.input ?? "");
  p.end(0);
  if (fd3) {
    p.write(3, opts.fd3Input ?? "");
    p.end(3);
  }
  const result = await p.done;
  if (result.exitCode !== 0 && !opts.allowFail) {
    const [file, argv] = opts.netns ? ["nsenter", [`--net=${opts.netns}`, "--", cmd, ...args]] : [cmd, args];
    throw new CommandError([file, ...argv].join(" "), result);
  }
  return result;
}
