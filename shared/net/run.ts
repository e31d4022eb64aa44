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
 * Started with node:child_process rather than execa (which invoke.ts uses for delegate plugins): an ADD
 * runs two to four of these, and execa's load and first call cost ~75 ms of ADD+DEL on the pod path
 * (bench-bridge, same run: 421 -> 346 ms), more than the rest of the plugin's own work.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = opts.netns ? ["nsenter", [`--net=${opts.netns}`, "--", cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const fd3 = opts.fd3Input !== undefined;
    const child = spawn(file, argv, {
      env: { ...process.env, LC_ALL: "C" },
      stdio: fd3 ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    // A tool that exits without reading its input must not turn into an EPIPE crash.
    child.stdin.on("error", () => undefined);
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (code) => {
      const result = {
        exitCode: typeof code === "number" ? code : 127,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") || (spawnError?.message ?? ""),
      };
      if (result.exitCode !== 0 && !opts.allowFail)
        reject(new CommandError([file, ...argv].join(" "), result));
      else resolve(result);
    });
    child.stdin.end(opts.input ?? "");
    if (fd3) {
      const extra = child.stdio[3] as NodeJS.WritableStream;
      extra.on("error", () => undefined);
      extra.end(opts.fd3Input ?? "");
    }
  });
}
