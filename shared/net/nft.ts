import { run } from "./run.js";

/**
 * nftables through the `nft` tool, the way knftables drives it: a whole change set as one `nft -f -`
 * transaction (all or nothing) and reads as `nft --json list ...`.
 */
export type NftFamily = "ip" | "ip6" | "inet" | "bridge";

/** One rule as `nft --json` lists it; `handle` is what a later `delete rule` names. */
export interface NftRule {
  family: NftFamily;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr: unknown[];
}

export type NftOutcome = { ok: true } | { ok: false; message: string };

/** Applies `commands` (nft script lines) as one transaction; nothing is applied when any line fails. */
export async function tryApplyNft(commands: string[]): Promise<NftOutcome> {
  if (commands.length === 0) return { ok: true };
  try {
    const r = await run("nft", ["-f", "-"], { input: `${commands.join("\n")}\n`, allowFail: true });
    if (r.exitCode === 0) return { ok: true };
    return { ok: false, message: r.stderr.trim() || `exit status ${r.exitCode}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

export async function applyNft(commands: string[]): Promise<void> {
  const r = await tryApplyNft(commands);
  if (!r.ok) throw new Error(r.message);
}

/**
 * The rules of `family table`, or undefined when the table does not exist (knftables' IsNotFound).
 * Other failures throw.
 */
export async function listTableRules(family: NftFamily, table: string): Promise<NftRule[] | undefined> {
  const r = await run("nft", ["--json", "list", "table", family, table], { allowFail: true });
  if (r.exitCode !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new Error(r.stderr.trim() || `nft list table ${family} ${table}: exit status ${r.exitCode}`);
  }
  const doc = JSON.parse(r.stdout) as { nftables?: Array<{ rule?: NftRule }> };
  return (doc.nftables ?? []).flatMap((o) => (o.rule ? [o.rule] : []));
}

/** `"text"` as an nft string literal (comments); nft strings cannot hold a double quote. */
export function nftString(text: string): string {
  if (text.includes('"')) throw new Error(`nft strings cannot contain '"': ${text}`);
  return `"${text}"`;
}

/** The command that deletes a listed rule. */
export function deleteRuleCommand(rule: NftRule): string {
  return `delete rule ${rule.family} ${rule.table} ${rule.chain} handle ${rule.handle}`;
}

/**
 * knftables.New's availability test: `nft` runs, reports v1.0.1 or later, and accepts a table with a
 * comment in check mode.
 */
export async function nftUsable(): Promise<boolean> {
  return (await probeNft()).ok;
}

/** nftUsable with the reason when it is not. */
export async function probeNft(): Promise<NftOutcome> {
  const fail = (message: string): NftOutcome => ({ ok: false, message });
  try {
    const v = await run("nft", ["--version"], { allowFail: true });
    const m = /v(\d+)\.(\d+)\.(\d+)/.exec(v.stdout);
    if (v.exitCode !== 0 || !m)
      return fail(`nft --version: ${v.stderr.trim() || v.stdout.trim() || `exit status ${v.exitCode}`}`);
    const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (maj < 1 || (maj === 1 && min === 0 && patch < 1)) return fail(`nft ${m[0]} is older than v1.0.1`);
    const probe = 'add table ip weft_probe { comment "probe" ; }\n';
    const c = await run("nft", ["--check", "-f", "-"], { input: probe, allowFail: true });
    return c.exitCode === 0
      ? { ok: true }
      : fail(`nft --check: ${c.stderr.trim() || `exit status ${c.exitCode}`}`);
  } catch (err) {
    return fail((err as Error).message);
  }
}
