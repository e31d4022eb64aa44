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

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { execa } = await import("execa");
  const [file, argv] = opts.netns ? ["nsenter", [`--net=${opts.netns}`, "--", cmd, ...args]] : [cmd, args];
  const r = await execa(file, argv, {
    input: opts.input ?? "",
    reject: false,
    stripFinalNewline: false,
    env: { LC_ALL: "C" },
  });
  const result = {
    exitCode: typeof r.exitCode === "number" ? r.exitCode : 127,
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? r.message ?? ""),
  };
  if (result.exitCode !== 0 && !opts.allowFail) throw new CommandError([file, ...argv].join(" "), result);
  return result;
}
