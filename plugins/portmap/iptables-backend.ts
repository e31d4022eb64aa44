import {
  chainDeclaration,
  chainsIn,
  deletionOf,
  type Family,
  formatArgs,
  hasRule,
  type RestoreOutcome,
  rulesIn,
  rulesJumpingTo,
  splitArgs,
  tryApplyRules,
  trySaveTable,
} from "../../shared/net/iptables.js";
import {
  type Chain,
  dnatChain,
  dnatChainName,
  dnatComment,
  oldSnatChainName,
  sharedChains,
  TOP_LEVEL_DNAT_CHAIN,
} from "./chains.js";
import { type ContainerNet, mappingApplies, type PortMapConfig } from "./config.js";
import { BackendUnusableError, type PortMapper, type RemovedUdpPorts } from "./mapper.js";
import type { FamilyTeardown, Teardown } from "./record.js";

/**
 * The iptables backend. Where the reference runs one iptables process per check and per rule, each
 * verb here reads the nat table once (iptables-save) and writes one iptables-restore --noflush
 * transaction per family, planned from what the read showed. Another process may change the table
 * between the read and the write (a concurrent ADD creating a shared chain, a DEL removing a rule); the
 * transaction then fails as a whole and is planned again from a fresh read, once.
 */

const TABLE = "nat";
const familyName = (f: Family) => (f === 4 ? "ipv4" : "ipv6");

/**
 * The restore lines that bring `saved` to: shared chains present with their rules and entry rules
 * (added only when missing, so repeated ADDs add nothing), and the container chain holding exactly
 * `container`'s rules and entry rules (its chain declaration empties it; old entry rules are deleted).
 */
export function planAdd(saved: string, shared: Chain[], container: Chain): string[] {
  const existing = chainsIn(saved);
  const head: string[] = [];
  const body: string[] = [];
  for (const c of shared) {
    // `-N` (not a `:` declaration, which would flush the shared chain and drop other containers'
    // entries) fails the transaction if another ADD created the chain meanwhile: then we re-plan.
    if (!existing.has(c.name)) head.push(`-N ${c.name}`);
    for (const r of c.rules) {
      const line = `-A ${c.name} ${formatArgs(r)}`;
      if (!hasRule(saved, line)) body.push(line);
    }
    body.push(...entryLines(saved, c));
  }
  head.push(chainDeclaration(container.name));
  for (const old of rulesJumpingTo(saved, container.name)) body.push(deletionOf(old));
  for (const r of container.rules) body.push(`-A ${container.name} ${formatArgs(r)}`);
  for (const ec of container.entryChains) {
    for (const r of container.entryRules) body.push(`-A ${ec} ${formatArgs([...r, "-j", container.name])}`);
  }
  return [...head, ...body];
}

function entryLines(saved: string, c: Chain): string[] {
  const out: string[] = [];
  for (const ec of c.entryChains) {
    for (const r of c.entryRules) {
      const spec = formatArgs([...r, "-j", c.name]);
      if (hasRule(saved, `-A ${ec} ${spec}`)) continue;
      out.push(c.prependEntry ? `-I ${ec} 1 ${spec}` : `-A ${ec} ${spec}`);
    }
  }
  return out;
}

/**
 * The transaction for the usual ADD, planned without reading the table: it commits only if every shared
 * rule and entry rule is in place (`-C`, as the reference's InsertUnique checks) and the container
 * chain is new (`-N` fails otherwise, so a repeated ADD never duplicates entry rules). When any of that
 * does not hold, nothing is applied and the ADD goes the read-and-plan way.
 */
export function planAddUnread(shared: Chain[], container: Chain): string[] {
  const lines: string[] = [];
  for (const c of shared) {
    for (const r of c.rules) lines.push(`-C ${c.name} ${formatArgs(r)}`);
    for (const ec of c.entryChains) {
      for (const r of c.entryRules) lines.push(`-C ${ec} ${formatArgs([...r, "-j", c.name])}`);
    }
  }
  lines.push(`-N ${container.name}`);
  for (const r of container.rules) lines.push(`-A ${container.name} ${formatArgs(r)}`);
  for (const ec of container.entryChains) {
    for (const r of container.entryRules) lines.push(`-A ${ec} ${formatArgs([...r, "-j", container.name])}`);
  }
  return lines;
}

/**
 * The teardown of a container chain whose entry rules are known (the ADD's record, or a DEL with the
 * ADD's mappings), without reading the table: `-D` matches rules as iptables does and `-X` fails while
 * any other rule jumps to the chain, so it commits only if exactly these entry rules are the chain's
 * references; otherwise nothing changes and DEL reads the table.
 */
export function planTeardownUnread(container: Chain): string[] {
  const lines: string[] = [];
  for (const ec of container.entryChains) {
    for (const r of container.entryRules) lines.push(`-D ${ec} ${formatArgs([...r, "-j", container.name])}`);
  }
  lines.push(`-F ${container.name}`, `-X ${container.name}`);
  return lines;
}

/** What the DEL of one container address removes without a read: planTeardownUnread, its UDP ports. */
export function familyTeardown(conf: PortMapConfig, net: ContainerNet): FamilyTeardown {
  const udp = conf.mappings.filter((pm) => pm.protocol === "udp" && mappingApplies(pm, net.family));
  return { restore: planTeardownUnread(dnatChain(conf, net)), udp: udp.map((pm) => pm.hostPort) };
}

/**
 * Whether a recorded teardown removes nothing but this container's chain and the rules jumping to it:
 * the record is a file, and what it says goes to iptables-restore.
 */
export function teardownIsOwn(t: FamilyTeardown, chain: string): boolean {
  const lines = t.restore.map(splitArgs);
  const tail = lines.slice(-2);
  return (
    lines.length >= 2 &&
    lines
      .slice(0, -2)
      .every((a) => a[0] === "-D" && a.length >= 4 && a.at(-2) === "-j" && a.at(-1) === chain) &&
    tail[0]?.join(" ") === `-F ${chain}` &&
    tail[1]?.join(" ") === `-X ${chain}`
  );
}

/** The restore lines that remove `chains` (those that exist) and every rule jumping to them. */
export function planTeardown(saved: string, chains: string[]): string[] {
  const existing = chainsIn(saved);
  const present = chains.filter((c) => existing.has(c));
  const lines: string[] = [];
  for (const c of present) for (const ref of rulesJumpingTo(saved, c)) lines.push(deletionOf(ref));
  for (const c of present) lines.push(`-F ${c}`, `-X ${c}`);
  return [...new Set(lines)];
}

/** Host ports of the UDP DNAT rules in `chain` (what a teardown stops forwarding). */
export function udpPortsIn(saved: string, chain: string): number[] {
  const ports: number[] = [];
  for (const line of rulesIn(saved, chain)) {
    const a = splitArgs(line);
    const p = a.indexOf("-p");
    const d = a.indexOf("--dport");
    if (p >= 0 && a[p + 1] === "udp" && d >= 0 && a.includes("DNAT")) ports.push(Number(a[d + 1]));
  }
  return ports;
}

async function save(family: Family): Promise<string> {
  const r = await trySaveTable(family, TABLE);
  if (!r.ok) throw new BackendUnusableError(`failed to open iptables: ${r.message}`);
  return r.saved;
}

/** Plans from a fresh read and applies; on a failed transaction, once more from a new read. */
async function applyPlanned(family: Family, plan: (saved: string) => string[]): Promise<RestoreOutcome> {
  let outcome: RestoreOutcome = { ok: true };
  for (let attempt = 0; attempt < 2; attempt++) {
    outcome = await tryApplyRules(family, TABLE, plan(await save(family)));
    if (outcome.ok) return outcome;
  }
  return outcome;
}

async function forwardOne(conf: PortMapConfig, net: ContainerNet): Promise<void> {
  const shared = sharedChains(conf);
  const container = dnatChain(conf, net);
  // One process in the steady state (shared chains in place, new container); else read, plan, apply.
  if ((await tryApplyRules(net.family, TABLE, planAddUnread(shared, container))).ok) return;
  const r = await applyPlanned(net.family, (saved) => planAdd(saved, shared, container));
  if (!r.ok) throw new Error(`unable to setup DNAT: ${r.message}`);
}

function formatRules(rules: string[][]): string {
  return `[${rules.map((r) => `[${r.join(" ")}]`).join(" ")}]`;
}

async function checkOne(conf: PortMapConfig, net: ContainerNet): Promise<void> {
  const c = dnatChain(conf, net);
  const fail = (msg: string) => new Error(`could not check ${familyName(net.family)} dnat: ${msg}`);
  const saved = await save(net.family);
  if (!chainsIn(saved).has(c.name)) throw fail(`chain ${c.name} not found in iptables table ${TABLE}`);
  // One restore of `-C` lines checks every rule the way `iptables -C` does (semantically, not by
  // text); it stops at the first missing one and names its line.
  const checks: Array<{ line: string; what: string }> = [];
  for (const r of c.rules) {
    checks.push({
      line: `-C ${c.name} ${formatArgs(r)}`,
      what: `rule ${formatRules(c.rules)} in chain ${c.name}`,
    });
  }
  for (const ec of c.entryChains) {
    for (const r of c.entryRules) {
      checks.push({
        line: `-C ${ec} ${formatArgs([...r, "-j", c.name])}`,
        what: `rule ${formatRules(c.entryRules)} in chain ${ec}`,
      });
    }
  }
  const r = await tryApplyRules(
    net.family,
    TABLE,
    checks.map((x) => x.line),
  );
  if (!r.ok) {
    const what = r.index !== undefined ? checks[r.index]?.what : undefined;
    throw fail(what ? `${what} not found in table ${TABLE}` : r.message);
  }
}

/**
 * The saved tables of `families`; a family whose tool fails is left out, unless none can be read and
 * `someWorked` is false (then the backend is not usable here).
 */
async function saveFamilies(families: Family[], someWorked = false): Promise<Map<Family, string>> {
  const results = await Promise.all(families.map((f) => trySaveTable(f, TABLE)));
  const saved = new Map<Family, string>();
  const errors = new Map<Family, string>();
  families.forEach((f, i) => {
    const r = results[i]!;
    if (r.ok) saved.set(f, r.saved);
    else errors.set(f, r.message);
  });
  if (saved.size === 0 && !someWorked && families.length > 0) {
    const why = [...errors].map(([f, m]) => `(${f === 4 ? "iptables" : "ip6tables"}) ${m}`).join(", ");
    throw new BackendUnusableError(
      families.length === 2
        ? `neither iptables nor ip6tables is usable, ${why}`
        : `failed to open iptables: ${why}`,
    );
  }
  return saved;
}

async function teardown(
  family: Family,
  first: string,
  chains: (saved: string) => string[],
): Promise<{ udp: number[] }> {
  const udp = chains(first).flatMap((c) => udpPortsIn(first, c));
  let saved = first;
  for (let attempt = 0; attempt < 2; attempt++) {
    const lines = planTeardown(saved, chains(saved));
    const r = await tryApplyRules(family, TABLE, lines);
    if (r.ok) return { udp };
    if (attempt === 1) throw new Error(`could not teardown ${familyName(family)} dnat: ${r.message}`);
    saved = await save(family);
  }
  return { udp };
}

/**
 * The dnat chains of this network's attachments whose container is not valid, found through the
 * `dnat name: "<net>" id: "<cid>"` comment of their entry rules, so other networks' chains and chains
 * of unknown origin are left alone.
 */
export function staleChains(saved: string, netName: string, valid: Set<string>): string[] {
  const keep = new Set([...valid].map((id) => dnatChainName(netName, id)));
  const prefix = dnatComment(netName, "").slice(0, -1);
  const out = new Set<string>();
  for (const line of rulesIn(saved, TOP_LEVEL_DNAT_CHAIN)) {
    const a = splitArgs(line);
    const ci = a.indexOf("--comment");
    const ji = a.indexOf("-j");
    const comment = ci >= 0 ? a[ci + 1] : undefined;
    const target = ji >= 0 ? a[ji + 1] : undefined;
    if (!comment?.startsWith(prefix) || !target?.startsWith("CNI-DN-")) continue;
    if (!keep.has(target)) out.add(target);
  }
  return [...out];
}

export const iptablesMapper: PortMapper = {
  name: "iptables",

  async forwardPorts(conf, nets) {
    await Promise.all(nets.map((net) => forwardOne(conf, net)));
  },

  async checkPorts(conf, nets) {
    for (const net of nets) await checkOne(conf, net);
  },

  teardownPlan(conf, nets) {
    if (nets.length === 0) return undefined;
    const families: Teardown["families"] = {};
    for (const net of nets) families[net.family] = familyTeardown(conf, net);
    return { backend: "iptables", families };
  },

  async unforwardPorts(conf, recorded) {
    const removed: RemovedUdpPorts = { 4: [], 6: [] };
    // Known rules go in one transaction per family, without a read: the ADD's record (what it installed,
    // whatever the DEL carries), else the ADD's mappings and pod addresses (libcni passes the cached
    // result on DEL from 0.4.0). A family whose transaction fails (the rules changed since) is read and
    // cleaned; with nothing known, both are.
    const known = new Map<Family, FamilyTeardown>();
    const chain = dnatChainName(conf.name, conf.containerId);
    const own = recorded?.backend === "iptables" ? recorded.families : undefined;
    if (own && Object.values(own).every((t) => teardownIsOwn(t, chain))) {
      for (const f of [4, 6] as const) if (own[f]) known.set(f, own[f]);
    } else if (conf.mappings.length > 0) {
      const nets = [conf.contIPv4, conf.contIPv6].filter((n): n is ContainerNet => n !== undefined);
      for (const net of nets) known.set(net.family, familyTeardown(conf, net));
    }
    const failed: Family[] = [];
    await Promise.all(
      [...known].map(async ([family, t]) => {
        if ((await tryApplyRules(family, TABLE, t.restore)).ok) removed[family] = t.udp;
        else failed.push(family);
      }),
    );
    if (known.size > 0 && failed.length === 0) return removed;
    const saved = await saveFamilies(known.size > 0 ? failed : [4, 6], failed.length < known.size);
    const names = [chain, oldSnatChainName(conf.name, conf.containerId)];
    await Promise.all(
      [...saved].map(async ([family, text]) => {
        removed[family] = [...removed[family], ...(await teardown(family, text, () => names)).udp];
      }),
    );
    return removed;
  },

  async gc(conf, valid) {
    const saved = await saveFamilies([4, 6]);
    await Promise.all(
      [...saved].map(([family, text]) => teardown(family, text, (s) => staleChains(s, conf.name, valid))),
    );
  },
};
