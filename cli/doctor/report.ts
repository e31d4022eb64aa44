/**
 * What `weft doctor` says: one check per line, in words an operator greps for, or the same as JSON.
 *
 *   ok       cni0: 10.244.3.1/24, MTU 1450, 2 pods attached
 *   PROBLEM  route:10.244.2.0/24: no route to node 192.168.77.2's pods -> fix: ...
 *   FIXED    leak-reservation:10.244.3.9: ... -> done: released ...
 *   skipped  vxlan-device: the backend is host-gw
 *
 * The status word comes first (so `grep PROBLEM` lists what is wrong), then the check's id (stable, with
 * the object it is about after a colon), the finding, and for a problem what to do.
 */

export type Status = "ok" | "problem" | "skipped";

export interface Check {
  /** Stable name of the check, with its subject: "subnet-env", "route:10.244.2.0/24". */
  id: string;
  status: Status;
  /** What was found (for a problem: what is wrong and what it breaks). */
  message: string;
  /** For a problem: what to do about it. */
  fix?: string;
  /** With --fix: what was done (the problem is then repaired). */
  fixed?: string;
  /**
   * The safe repair `--fix` may apply (a leak release, ip_forward): returns what it did, throws when it
   * could not. Never serialised.
   */
  repair?: () => Promise<string>;
}

export const ok = (id: string, message: string): Check => ({ id, status: "ok", message });
export const skipped = (id: string, message: string): Check => ({ id, status: "skipped", message });
export function problem(id: string, message: string, fix: string, repair?: () => Promise<string>): Check {
  return repair ? { id, status: "problem", message, fix, repair } : { id, status: "problem", message, fix };
}

/** Problems that are still problems (not repaired by --fix). */
export const open = (checks: Check[]): Check[] =>
  checks.filter((c) => c.status === "problem" && c.fixed === undefined);

/** 0 when nothing is wrong (or everything wrong was repaired), 1 otherwise. */
export function exitCode(checks: Check[]): 0 | 1 {
  return open(checks).length === 0 ? 0 : 1;
}

const WORD: Record<Status, string> = { ok: "ok", problem: "PROBLEM", skipped: "skipped" };

/** One line for a check (no line breaks inside: every message is squeezed to one line). */
export function formatCheck(c: Check): string {
  const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").trim();
  const word = c.fixed !== undefined ? "FIXED" : WORD[c.status];
  let line = `${word.padEnd(8)} ${c.id}: ${oneLine(c.message)}`;
  if (c.fixed !== undefined) line += ` -> done: ${oneLine(c.fixed)}`;
  else if (c.status === "problem" && c.fix) line += ` -> fix: ${oneLine(c.fix)}`;
  return line;
}

/** The closing line: what the exit status says, in words. */
export function summary(checks: Check[]): string {
  const left = open(checks).length;
  const fixed = checks.filter((c) => c.fixed !== undefined).length;
  const repaired = fixed > 0 ? `, ${fixed} fixed` : "";
  if (left === 0) return `weft doctor: no problem found (${checks.length} checks${repaired})`;
  const fixable = open(checks).filter((c) => c.repair).length;
  const hint = fixable > 0 ? `; ${fixable} can be repaired by weft doctor --fix` : "";
  return `weft doctor: ${left} problem${left === 1 ? "" : "s"} (${checks.length} checks${repaired})${hint}`;
}

export function formatText(checks: Check[]): string {
  return `${[...checks.map(formatCheck), summary(checks)].join("\n")}\n`;
}

/** `--json`: the checks (without their repair functions) and the counts the exit status rests on. */
export function formatJson(checks: Check[]): string {
  const out = {
    ok: exitCode(checks) === 0,
    problems: open(checks).length,
    fixed: checks.filter((c) => c.fixed !== undefined).length,
    checks: checks.map((c) => ({
      id: c.id,
      status: c.status,
      message: c.message,
      ...(c.fix !== undefined ? { fix: c.fix } : {}),
      ...(c.fixed !== undefined ? { fixed: c.fixed } : {}),
    })),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * Applies the repairs of the problems that have one, one after the other; a repair that fails leaves its
 * problem open with the reason added to the fix.
 */
export async function applyRepairs(checks: Check[]): Promise<void> {
  for (const c of checks) {
    if (c.status !== "problem" || !c.repair) continue;
    try {
      c.fixed = await c.repair();
    } catch (err) {
      c.fix = `${c.fix ?? ""} (weft doctor --fix failed: ${(err as Error).message})`.trim();
    }
  }
}
