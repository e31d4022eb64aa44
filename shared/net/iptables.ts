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
