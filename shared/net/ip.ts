import { run } from "./run.js";
import { type SysctlWrite, sysctlShellPrelude } from "./sysctl.js";

/**
 * iproute2 in batch mode: many link/addr/route changes through one `ip -batch -` process, with `-json`
 * reads interleaved where the caller needs to see state (each `show` prints one JSON array per line).
 * The batch stops at the first failing command, whose number ip reports as "Command failed -:N".
 */
export interface IpCommand {
  /** One `ip` command line without the leading `ip`, e.g. `link set dev veth0 up`. */
  line: string;
  /** What the command does, for the error message ("set bridge address"). */
  what: string;
  /** A `show` whose JSON output the caller wants back. */
  read?: boolean;
  /** A failure of this command (with this message pattern) is expected and does not stop the batch. */
  mayFail?: RegExp;
}

export interface IpBatchOptions {
  /** Run inside this network namespace (entered once, with nsenter). */
  netns?: string;
  /** `-details` on reads (link kinds, bridge port flags). */
  details?: boolean;
  /** Per-netns sysctls to write just before the batch, in the same process (netns only). */
  sysctls?: SysctlWrite[];
}

export class IpBatchError extends Error {
  constructor(
    /** Index into the commands, or -1 when ip rejected the input before running anything. */
    readonly index: number,
    readonly what: string,
    /** The kernel/ip message in the reference's (Go errno) wording, e.g. "file exists". */
    readonly reason: string,
  ) {
    super(what ? `${what}: ${reason}` : reason);
    this.name = "IpBatchError";
  }
}

/** The result of a batch: JSON of each `read` command, in command order (undefined if it did not run). */
export type IpReads = Array<unknown[] | undefined>;

/**
 * "RTNETLINK answers: File exists" -> "file exists": Go prints syscall errnos in lower case, and users
 * grep for the reference's wording.
 */
export function reasonOf(message: string): string {
  const m = /RTNETLINK answers: (.*)/.exec(message);
  if (m) return m[1]!.charAt(0).toLowerCase() + m[1]!.slice(1);
  return message.replace(/^Error: /, "").trim();
}

/**
 * Splits ip's stderr into failures: each "Command failed -:N" line closes the message lines before it.
 * Returns the failing command numbers (1-based) with their messages.
 */
export function parseBatchErrors(stderr: string): Array<{ lineNo: number; message: string }> {
  const out: Array<{ lineNo: number; message: string }> = [];
  let pending: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (m) {
      out.push({ lineNo: Number(m[1]), message: pending.join("\n").trim() });
      pending = [];
    } else if (line.trim() !== "") {
      pending.push(line);
    }
  }
  if (pending.length > 0 && out.length === 0) out.push({ lineNo: 0, message: pending.join("\n").trim() });
  return out;
}

/**
 * Runs the commands as one batch and throws IpBatchError naming the first command that failed. A command
 * marked `mayFail` whose message matches is tolerated; such a batch runs with `-force` (every command is
 * attempted), so use it only for commands that do not depend on each other, such as a teardown.
 */
export async function ipBatch(cmds: IpCommand[], opts: IpBatchOptions = {}): Promise<IpReads> {
  if (cmds.length === 0) return [];
  const tolerant = cmds.some((c) => c.mayFail);
  const ipArgs = [
    "-json",
    ...(opts.details ? ["-details"] : []),
    ...(tolerant ? ["-force"] : []),
    "-batch",
    "-",
  ];
  const input = `${cmds.map((c) => c.line).join("\n")}\n`;
  let result: Awaited<ReturnType<typeof run>>;
  if (opts.netns && opts.sysctls?.length) {
    const pre = sysctlShellPrelude(opts.sysctls);
    result = await run("sh", ["-c", `${pre.script}exec ip ${ipArgs.join(" ")}`, "sh", ...pre.args], {
      input,
      netns: opts.netns,
      allowFail: true,
    });
  } else {
    result = await run("ip", ipArgs, {
      input,
      ...(opts.netns ? { netns: opts.netns } : {}),
      allowFail: true,
    });
  }
  const failures = parseBatchErrors(result.stderr);
  const failed = new Set(failures.map((f) => f.lineNo - 1));
  let stoppedAt = cmds.length;
  for (const f of failures) {
    const idx = f.lineNo - 1;
    const cmd = cmds[idx];
    if (cmd?.mayFail?.test(f.message)) continue;
    if (idx >= 0 && idx < stoppedAt) stoppedAt = idx;
    if (!tolerant) break;
  }
  const reads = collectReads(cmds, result.stdout, tolerant ? cmds.length : stoppedAt, failed);
  if (stoppedAt < cmds.length) {
    const f = failures.find((x) => x.lineNo - 1 === stoppedAt)!;
    throw Object.assign(new IpBatchError(stoppedAt, cmds[stoppedAt]!.what, reasonOf(f.message)), { reads });
  }
  if (result.exitCode !== 0 && failures.length === 0) {
    // ip refused the input as a whole (a malformed argument aborts the batch without a line number).
    throw new IpBatchError(-1, "", reasonOf(result.stderr.trim() || `ip exited with ${result.exitCode}`));
  }
  return reads;
}

function collectReads(cmds: IpCommand[], stdout: string, stoppedAt: number, failed: Set<number>): IpReads {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  const reads: IpReads = [];
  let next = 0;
  cmds.forEach((c, i) => {
    if (!c.read) return;
    if (i >= stoppedAt || failed.has(i) || next >= lines.length) {
      reads.push(undefined);
      return;
    }
    try {
      reads.push(JSON.parse(lines[next++]!) as unknown[]);
    } catch {
      reads.push(undefined);
    }
  });
  return reads;
}
