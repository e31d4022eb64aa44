import { run } from "./run.js";

/**
 * iptables through its batch tools: one `iptables-restore --noflush` per change set instead of one process
 * per rule, which is where the reference plugins spend most of their time.
 */
export type Family = 4 | 6;

const tool = (family: Family, name: "restore" | "save" | "plain") =>
  `${family === 4 ? "iptables" : "ip6tables"}${name === "plain" ? "" : `-${name}`}`;

/**
 * Applies `lines` (iptables-save syntax without the table header and COMMIT) to `table` atomically,
 * leaving every other rule in place. `-w` waits for the xtables lock like go-iptables' `--wait`.
 */
export async function applyRules(family: Family, table: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const input = `*${table}\n${lines.join("\n")}\nCOMMIT\n`;
  await run(tool(family, "restore"), ["--noflush", "-w"], { input });
}

/** The table as `iptables-save` prints it. */
export async function saveTable(family: Family, table: string): Promise<string> {
  return (await run(tool(family, "save"), ["-t", table])).stdout;
}

/** Runs the plain iptables/ip6tables command (for checks such as `-C`); returns whether it succeeded. */
export async function iptables(family: Family, args: string[]): Promise<boolean> {
  const r = await run(tool(family, "plain"), ["-w", ...args], { allowFail: true });
  return r.exitCode === 0;
}

/** Chains declared in a saved table (`:NAME POLICY [p:b]` lines). */
export function chainsIn(saved: string): Set<string> {
  const out = new Set<string>();
  for (const line of saved.split("\n")) if (line.startsWith(":")) out.add(line.slice(1).split(" ")[0]!);
  return out;
}

/** Rules of a saved table as `-A CHAIN ...` lines, optionally only those of one chain. */
export function rulesIn(saved: string, chain?: string): string[] {
  return saved
    .split("\n")
    .filter((l) => l.startsWith("-A ") && (chain === undefined || l.startsWith(`-A ${chain} `)));
}

/**
 * One rule's arguments as a line of iptables-restore input. Arguments with blanks or quotes are
 * double-quoted with `\"` escapes, the way iptables-save prints comments, so a rendered rule compares
 * equal to its saved form when iptables keeps the arguments as given.
 */
export function formatArgs(args: readonly string[]): string {
  return args.map(quoteArg).join(" ");
}

function quoteArg(arg: string): string {
  if (arg !== "" && !/[\s"'\\]/.test(arg)) return arg;
  return `"${arg.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Splits a saved rule line into its arguments, undoing iptables-save's quoting (shellwords rules). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inArg = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) out.push(cur);
      cur = "";
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (inArg) out.push(cur);
  return out;
}

/** `:NAME - [0:0]`: creates a user chain in a restore transaction, or empties it when it exists. */
export function chainDeclaration(name: string): string {
  return `:${name} - [0:0]`;
}

/** Turns a saved `-A CHAIN ...` line into the `-D CHAIN ...` line that deletes exactly that rule. */
export function deletionOf(savedRule: string): string {
  return `-D${savedRule.slice(2)}`;
}

/** Saved rules, in any chain, that jump or go to `target`. */
export function rulesJumpingTo(saved: string, target: string): string[] {
  return rulesIn(saved).filter((line) => {
    const args = splitArgs(line);
    const i = args.findIndex((a) => a === "-j" || a === "-g");
    return i >= 0 && args[i + 1] === target;
  });
}

/** Whether `rule` (a `-A CHAIN args` line) is present in the saved table, compared as argument lists. */
export function hasRule(saved: string, rule: string): boolean {
  const want = splitArgs(rule).join("\u0000");
  const chain = splitArgs(rule)[1];
  return rulesIn(saved, chain).some((line) => splitArgs(line).join("\u0000") === want);
}

export type RestoreOutcome =
  | { ok: true }
  | {
      ok: false;
      message: string /** Index into `lines` of the line iptables reports as failed. */;
      index?: number;
    };

/**
 * Like applyRules, but reports a failed transaction instead of throwing, so callers can re-read the
 * table and retry (another process may have created or removed a chain between the read and the write).
 * Nothing of a failed transaction is applied.
 */
export async function tryApplyRules(family: Family, table: string, lines: string[]): Promise<RestoreOutcome> {
  if (lines.length === 0) return { ok: true };
  const input = `*${table}\n${lines.join("\n")}\nCOMMIT\n`;
  const r = await run(tool(family, "restore"), ["--noflush", "-w"], { input, allowFail: true });
  if (r.exitCode === 0) return { ok: true };
  const message = (r.stderr.trim() || r.stdout.trim() || `exit status ${r.exitCode}`).split("\n")[0]!;
  const m = /line (\d+) failed/.exec(message);
  // The table header is line 1 of the input, so input line n is lines[n - 2].
  return m ? { ok: false, message, index: Number(m[1]) - 2 } : { ok: false, message };
}

/** The saved table, or the reason the tool cannot be used (missing binary, no kernel support). */
export async function trySaveTable(
  family: Family,
  table: string,
): Promise<{ ok: true; saved: string } | { ok: false; message: string }> {
  try {
    const r = await run(tool(family, "save"), ["-t", table], { allowFail: true });
    if (r.exitCode === 0) return { ok: true, saved: r.stdout };
    return { ok: false, message: r.stderr.trim() || `exit status ${r.exitCode}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/**
 * go-iptables' ChainExists("filter", "INPUT") as the reference uses it to decide whether iptables is
 * usable: `-S INPUT 1` exits 0 (rule listed) or 1 (no such rule); anything else means unusable.
 */
export async function iptablesUsable(family: Family): Promise<boolean> {
  try {
    const r = await run(tool(family, "plain"), ["-w", "-t", "filter", "-S", "INPUT", "1"], {
      allowFail: true,
    });
    return r.exitCode === 0 || r.exitCode === 1;
  } catch {
    return false;
  }
}

/**
 * Whether the plain tool can read the nat table (`-t nat -S OUTPUT`, a chain every nat table has), the
 * table the reference's portmap checks (`-t nat -L OUTPUT`). Unlike iptablesUsable, exit 1 is a failure.
 */
export async function probeNatTable(family: Family): Promise<{ ok: true } | { ok: false; message: string }> {
  try {
    const r = await run(tool(family, "plain"), ["-w", "-t", "nat", "-S", "OUTPUT"], { allowFail: true });
    if (r.exitCode === 0) return { ok: true };
    return { ok: false, message: r.stderr.trim() || `exit status ${r.exitCode}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** Where to run the tools: a network namespace (tests, or a daemon managing another namespace). */
export interface IptablesScope {
  netns?: string;
}

/** Every table of a family as `iptables-save` prints it (one process), or the reason it cannot be read. */
export async function trySaveAll(
  family: Family,
  scope: IptablesScope = {},
): Promise<{ ok: true; saved: string } | { ok: false; message: string }> {
  try {
    const r = await run(tool(family, "save"), [], { allowFail: true, ...scope });
    if (r.exitCode === 0) return { ok: true, saved: r.stdout };
    return { ok: false, message: r.stderr.trim() || `exit status ${r.exitCode}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** The tables of a full `iptables-save` output, each as the text between its `*table` line and COMMIT. */
export function tablesIn(saved: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const line of saved.split("\n")) {
    if (line.startsWith("*")) {
      name = line.slice(1).trim();
      lines = [];
    } else if (line === "COMMIT" && name !== undefined) {
      out.set(name, lines.join("\n"));
      name = undefined;
    } else if (name !== undefined) {
      lines.push(line);
    }
  }
  return out;
}

/**
 * Applies a whole iptables-restore input (several `*table ... COMMIT` blocks) with --noflush in one
 * process; reports a failure instead of throwing (nothing of a failed table block is applied).
 */
export async function tryRestore(
  family: Family,
  input: string,
  scope: IptablesScope = {},
): Promise<RestoreOutcome> {
  if (input === "") return { ok: true };
  const r = await run(tool(family, "restore"), ["--noflush", "-w"], { input, allowFail: true, ...scope });
  if (r.exitCode === 0) return { ok: true };
  return {
    ok: false,
    message: (r.stderr.trim() || r.stdout.trim() || `exit status ${r.exitCode}`).split("\n")[0]!,
  };
}

/** The first line of `iptables --version` (or ip6tables), e.g. "iptables v1.8.9 (nf_tables)". */
export async function iptablesVersion(family: Family): Promise<string | undefined> {
  try {
    const r = await run(tool(family, "plain"), ["--version"], { allowFail: true });
    return r.exitCode === 0 ? r.stdout.split("\n")[0] : undefined;
  } catch {
    return undefined;
  }
}
