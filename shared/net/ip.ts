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
  /** Reads of the commands that ran before the failure. */
  reads: IpReads = [];
  /** With ipBatchThenPod: which of the two batches failed. */
  stage: "host" | "pod" = "host";

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

function ipArgs(cmds: IpCommand[], details: boolean | undefined): string[] {
  const tolerant = cmds.some((c) => c.mayFail);
  return ["-json", ...(details ? ["-details"] : []), ...(tolerant ? ["-force"] : []), "-batch", "-"];
}

const batchInput = (cmds: IpCommand[]) => `${cmds.map((c) => c.line).join("\n")}\n`;

/** Reads the outcome of one batch: its reads, or the IpBatchError of the first failing command. */
function interpret(cmds: IpCommand[], result: { exitCode: number; stdout: string; stderr: string }): IpReads {
  const tolerant = cmds.some((c) => c.mayFail);
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
    const err = new IpBatchError(stoppedAt, cmds[stoppedAt]!.what, reasonOf(f.message));
    err.reads = reads;
    throw err;
  }
  if (result.exitCode !== 0 && failures.length === 0) {
    // ip refused the input as a whole (a malformed argument aborts the batch without a line number).
    throw new IpBatchError(-1, "", reasonOf(result.stderr.trim() || `ip exited with ${result.exitCode}`));
  }
  return reads;
}

/**
 * Runs the commands as one batch and throws IpBatchError naming the first command that failed. A command
 * marked `mayFail` whose message matches is tolerated; such a batch runs with `-force` (every command is
 * attempted), so use it only for commands that do not depend on each other, such as a teardown.
 */
export async function ipBatch(cmds: IpCommand[], opts: IpBatchOptions = {}): Promise<IpReads> {
  if (cmds.length === 0) return [];
  const args = ipArgs(cmds, opts.details);
  const input = batchInput(cmds);
  let result: Awaited<ReturnType<typeof run>>;
  if (opts.netns && opts.sysctls?.length) {
    const pre = sysctlShellPrelude(opts.sysctls);
    result = await run("sh", ["-c", `${pre.script}exec ip ${args.join(" ")}`, "sh", ...pre.args], {
      input,
      netns: opts.netns,
      allowFail: true,
    });
  } else {
    result = await run("ip", args, { input, ...(opts.netns ? { netns: opts.netns } : {}), allowFail: true });
  }
  return interpret(cmds, result);
}

const SPLIT = "@@weft-host-done@@";

/**
 * A host batch and, only if it succeeded, a batch inside the pod's namespace (with its sysctls), in ONE
 * process: sh runs the host `ip`, then execs nsenter for the pod part. The host batch travels on fd 3
 * (a pipe: `printf | ip` would cost a forked subshell), the pod batch on stdin; a marker line separates
 * the two halves of stdout and stderr.
 */
export async function ipBatchThenPod(
  host: IpCommand[],
  pod: IpCommand[],
  opts: { netns: string; sysctls?: SysctlWrite[]; details?: boolean },
): Promise<{ host: IpReads; pod: IpReads }> {
  const pre = sysctlShellPrelude(opts.sysctls ?? []);
  const hostArgs = ipArgs(host, opts.details).join(" ");
  const podArgs = ipArgs(pod, false).join(" ");
  const inner = `${pre.script}exec ip ${podArgs}`;
  const script = [
    `ip ${hostArgs} <&3 3<&-`,
    "rc=$?",
    "exec 3<&-",
    `echo "${SPLIT} $rc"; echo ${SPLIT} >&2`,
    '[ "$rc" -eq 0 ] || exit "$rc"',
    "ns=$1; shift",
    `exec nsenter --net="$ns" -- sh -c '${inner}' sh "$@"`,
  ].join("\n");
  const r = await run("sh", ["-c", script, "sh", opts.netns, ...pre.args], {
    input: batchInput(pod),
    fd3Input: batchInput(host),
    allowFail: true,
  });
  const marker = new RegExp(`${SPLIT} (\\d+)\\n`);
  const m = marker.exec(r.stdout);
  const hostOut = m ? r.stdout.slice(0, m.index) : r.stdout;
  const podOut = m ? r.stdout.slice(m.index + m[0].length) : "";
  const [hostErr = "", podErr = ""] = r.stderr.split(`${SPLIT}\n`);
  const hostReads = interpret(host, {
    exitCode: m ? Number(m[1]) : r.exitCode || 1,
    stdout: hostOut,
    stderr: hostErr,
  });
  try {
    const podReads = interpret(pod, { exitCode: r.exitCode, stdout: podOut, stderr: podErr });
    return { host: hostReads, pod: podReads };
  } catch (err) {
    if (err instanceof IpBatchError) err.stage = "pod";
    throw err;
  }
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
