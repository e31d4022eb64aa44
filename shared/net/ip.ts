import { run, start } from "./run.js";
import { type SysctlWrite, sysctlShellPrelude } from "./sysctl.js";

/**
 * iproute2 in batch mode: many link/addr/route changes through one `ip -batch -` process, with `-json`
 * reads interleaved where the caller needs to see state (each `show` prints one JSON array per line, and
 * ip flushes it at once, so a caller can read an answer before writing the next commands: a dialog).
 * The batch stops at the first failing command, whose number ip reports as "Command failed -:N". ip's
 * answers are netlink's, so they show the caller's network namespace, which /sys may not (link.ts).
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
  /** With ipBatchThenPod, when the pod batch failed: the reads of the host batch. */
  hostReads: IpReads = [];

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
 * A word (a link name, a namespace path) that ip's batch reader cannot carry as one argument. Callers
 * check words up front with `batchWordProblem` and refuse them with a CNI error; this is the last guard.
 */
export class IpWordError extends Error {
  constructor(
    readonly word: string,
    readonly reason: string,
  ) {
    super(`${JSON.stringify(word)} cannot be passed to ip: ${reason}`);
    this.name = "IpWordError";
  }
}

// How iproute2 (lib/utils.c getcmdline and makeargs, unchanged from 5.x to 7.x) splits a batch line:
// everything from the first "#" on is dropped, even inside quotes; a backslash before the line break
// joins the next line, and is literal anywhere else (there are no escapes); words are separated by
// space, tab, CR or LF; a word that starts with ' or " runs to the next same quote, whatever it holds.
const BATCH_SPACE = /[ \t\r\n]/;

const needsQuotes = (word: string) =>
  word === "" ||
  BATCH_SPACE.test(word) ||
  word.startsWith('"') ||
  word.startsWith("'") ||
  word.endsWith("\\");

/** Why ip's batch reader cannot carry `word` as one argument, or undefined when it can. */
export function batchWordProblem(word: string): string | undefined {
  if (word.includes("#")) return 'ip\'s batch input takes "#" as the start of a comment';
  if (word.includes("\n")) return "a line break ends a line of ip's batch input";
  if (word.includes("\0")) return "it holds a NUL byte";
  if (needsQuotes(word) && word.includes('"') && word.includes("'")) {
    return "ip's batch input has no escapes, so a word that must be quoted cannot hold both ' and \"";
  }
  return undefined;
}

/**
 * `word` as ip's batch reader reads it back: bare when it can be (quotes inside a word are literal),
 * else in the quote it does not contain. A trailing backslash is quoted so it never meets the line break.
 * Throws IpWordError for what cannot be carried.
 */
export function q(word: string): string {
  const problem = batchWordProblem(word);
  if (problem) throw new IpWordError(word, problem);
  if (!needsQuotes(word)) return word;
  return word.includes('"') ? `'${word}'` : `"${word}"`;
}

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
  // Lines after the last numbered failure: ip exited on its own (an argument it cannot parse).
  if (pending.length > 0) out.push({ lineNo: 0, message: pending.join("\n").trim() });
  return out;
}

const tolerant = (cmds: IpCommand[]) => cmds.some((c) => c.mayFail);

function ipArgs(details: boolean | undefined, force: boolean): string[] {
  return ["-json", ...(details ? ["-details"] : []), ...(force ? ["-force"] : []), "-batch", "-"];
}

const batchInput = (cmds: IpCommand[]) => (cmds.length > 0 ? `${cmds.map((c) => c.line).join("\n")}\n` : "");

/**
 * Reads the outcome of one batch: its reads, or the IpBatchError of the first failing command. Under
 * `force` (ip's -force: every command is attempted) a failure matching the command's `mayFail` is fine;
 * without it, ip stopped there and the failure counts whatever it says. Also used for `bridge -batch`
 * (bridge-batch.ts), which reports failures the same way.
 */
export function interpret(
  cmds: IpCommand[],
  result: { exitCode: number; stdout: string; stderr: string },
  force: boolean,
): IpReads {
  const failures = parseBatchErrors(result.stderr);
  const failed = new Set(failures.map((f) => f.lineNo - 1));
  let stop: { index: number; message: string } | undefined;
  for (const f of failures) {
    const index = f.lineNo - 1;
    if (index < 0 || index >= cmds.length) continue;
    if (force && cmds[index]!.mayFail?.test(f.message)) continue;
    if (!stop || index < stop.index) stop = { index, message: f.message };
  }
  const reads = collectReads(cmds, result.stdout, force ? cmds.length : (stop?.index ?? cmds.length), failed);
  if (stop) {
    const err = new IpBatchError(stop.index, cmds[stop.index]!.what, reasonOf(stop.message));
    err.reads = reads;
    throw err;
  }
  if (result.exitCode !== 0) {
    // ip gave up without a command number: it exits at once on an argument it cannot parse or an
    // unterminated quote, after the commands before it ran. Its own words are the reason.
    const unnumbered = failures.find((f) => f.lineNo === 0)?.message;
    if (unnumbered === undefined && force && failures.length > 0) return reads; // all tolerated
    const err = new IpBatchError(-1, "", reasonOf(unnumbered || `ip exited with ${result.exitCode}`));
    err.reads = reads;
    throw err;
  }
  return reads;
}

/**
 * Runs the commands as one batch and throws IpBatchError naming the first command that failed. A command
 * marked `mayFail` whose message matches is tolerated; such a batch runs with `-force` (every command is
 * attempted), so use it only for commands that do not depend on each other, such as a teardown or reads.
 */
export async function ipBatch(cmds: IpCommand[], opts: IpBatchOptions = {}): Promise<IpReads> {
  if (cmds.length === 0) return [];
  const force = tolerant(cmds);
  const args = ipArgs(opts.details, force);
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
  return interpret(cmds, result, force);
}

/** Reads in the middle of a host batch, answered before the rest of the batch is written. */
export interface IpDialog {
  /**
   * Runs these reads now and returns their JSON in order. Use reads that succeed whatever exists (such
   * as `addr show type bridge`): a failing one ends ip, and the batch then fails with its IpBatchError.
   */
  read(cmds: IpCommand[]): Promise<IpReads>;
}

/**
 * A host batch: fixed commands, or a dialog that asks ip for reads first and returns the commands to run
 * after them (no -force then). Throwing from the dialog aborts: ip exits without another command and the
 * pod part never runs, so nothing is changed beyond what the dialog's reads did (nothing).
 */
export type HostBatch = IpCommand[] | ((ip: IpDialog) => Promise<IpCommand[]>);

export interface ThenPodOptions {
  netns: string;
  sysctls?: SysctlWrite[];
  /** `-details` on the host reads, on the pod reads. */
  details?: boolean;
  podDetails?: boolean;
  /** Run the pod part even when a host command failed (read-only host batches with `mayFail` reads). */
  podAfterHostFailure?: boolean;
}

const SPLIT = "@@weft-host-done@@";

/** Lines of stdout before the marker (the host ip's answers) and whether the marker came. */
function hostAnswers(stdout: string): { lines: string[]; ended: boolean } {
  const at = stdout.indexOf(SPLIT);
  const host = at >= 0 ? stdout.slice(0, at) : stdout.slice(0, stdout.lastIndexOf("\n") + 1);
  return { lines: host.split("\n").filter((l) => l.trim() !== ""), ended: at >= 0 };
}

class DialogEnded extends Error {}

/**
 * A host batch and, only if it succeeded, a batch inside the pod's namespace (with its sysctls), in ONE
 * process: sh runs the host `ip`, then execs nsenter for the pod part. The host batch travels on fd 3
 * (a pipe, so Node can hold a dialog with ip: `printf | ip` would also cost a forked subshell), the pod
 * batch on stdin after a "go" line, written only once the host batch is complete; a marker line
 * separates the two halves of stdout and stderr.
 */
export async function ipBatchThenPod(
  host: HostBatch,
  pod: IpCommand[],
  opts: ThenPodOptions,
): Promise<{ host: IpReads; pod: IpReads }> {
  const pre = sysctlShellPrelude(opts.sysctls ?? []);
  const fixed = Array.isArray(host) ? host : undefined;
  const talk = Array.isArray(host) ? undefined : host;
  const hostForce = fixed ? tolerant(fixed) : false;
  const podForce = tolerant(pod);
  const inner = `${pre.script}exec ip ${ipArgs(opts.podDetails, podForce).join(" ")}`;
  const script = [
    `ip ${ipArgs(opts.details, hostForce).join(" ")} <&3 3<&-`,
    "rc=$?",
    "exec 3<&-",
    `echo "${SPLIT} $rc"; echo ${SPLIT} >&2`,
    ...(opts.podAfterHostFailure ? [] : ['[ "$rc" -eq 0 ] || exit "$rc"']),
    // dash's read takes one byte at a time from a pipe, so the pod batch after the line stays for ip.
    'read -r go && [ "$go" = go ] || exit 125',
    "ns=$1; shift",
    `exec nsenter --net="$ns" -- sh -c '${inner}' sh "$@"`,
  ].join("\n");
  const p = start("sh", ["-c", script, "sh", opts.netns, ...pre.args], { fd3: true });

  const cmds: IpCommand[] = [...(fixed ?? [])];
  const finish = async () => {
    const r = await p.done;
    const marker = new RegExp(`${SPLIT} (\\d+)\\n`);
    const m = marker.exec(r.stdout);
    const hostOut = m ? r.stdout.slice(0, m.index) : r.stdout;
    const podOut = m ? r.stdout.slice(m.index + m[0].length) : "";
    const [hostErr = "", podErr = ""] = r.stderr.split(`${SPLIT}\n`);
    const hostReads = interpret(
      cmds,
      { exitCode: m ? Number(m[1]) : r.exitCode || 1, stdout: hostOut, stderr: hostErr },
      hostForce,
    );
    return { r, hostReads, podOut, podErr };
  };

  if (!talk) {
    p.write(3, batchInput(cmds));
  } else {
    let readsAsked = 0;
    const dialog: IpDialog = {
      read: async (more) => {
        if (more.some((c) => !c.read)) throw new Error("an ip dialog asks reads only");
        cmds.push(...more);
        p.write(3, batchInput(more));
        readsAsked += more.length;
        const want = readsAsked;
        let seen = hostAnswers("");
        await p.until((out) => {
          seen = hostAnswers(out);
          return seen.ended || seen.lines.length >= want;
        });
        if (seen.lines.length < want) throw new DialogEnded("ip ended before answering");
        return seen.lines.slice(want - more.length, want).map((l) => JSON.parse(l) as unknown[]);
      },
    };
    let rest: IpCommand[];
    try {
      rest = await talk(dialog);
    } catch (err) {
      // Abort: ip sees the end of its input, sh gets no "go", the pod part never runs.
      p.end(3);
      p.end(0);
      await finish(); // throws the IpBatchError of a read that ended ip
      throw err;
    }
    cmds.push(...rest);
    p.write(3, batchInput(rest));
  }
  p.end(3);
  p.write(0, `go\n${batchInput(pod)}`);
  p.end(0);
  const { r, hostReads, podOut, podErr } = await finish();
  try {
    const podReads = interpret(pod, { exitCode: r.exitCode, stdout: podOut, stderr: podErr }, podForce);
    return { host: hostReads, pod: podReads };
  } catch (err) {
    if (err instanceof IpBatchError) {
      err.stage = "pod";
      err.hostReads = hostReads;
    }
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
