import type { Logger } from "../shared/log.js";
import {
  chainsIn,
  deletionOf,
  type Family,
  type IptablesScope,
  iptablesVersion,
  rulesIn,
  rulesJumpingTo,
  splitArgs,
  tablesIn,
  tryRestore,
  trySaveAll,
} from "../shared/net/iptables.js";
import type { Lease } from "./lease.js";

/**
 * flanneld's iptables rules (pkg/trafficmngr/iptables/iptables.go), rule for rule, so flanneld and weftd
 * each find the other's rules in place and can take over a node:
 *
 * - `--ip-masq`: the nat chain FLANNEL-POSTRTG, jumped to from POSTROUTING, that leaves traffic inside
 *   the pod network and kube-proxy's marked traffic alone and masquerades the rest to or from it;
 * - `--iptables-forward-rules`: the filter chain FLANNEL-FWD, jumped to from FORWARD, accepting traffic
 *   from and to the pod network.
 *
 * Where flanneld checks each rule with one `iptables -C` process and re-creates all of them when one is
 * missing, a resync here is one `iptables-save` and at most one `iptables-restore --noflush` per family:
 * the chains are ours, so a chain whose rules differ from the wanted list in any way (a rule missing,
 * stray, out of order, or of a previous lease) is declared anew (which empties it) and refilled in the
 * same transaction; a missing jump is appended as flanneld appends it.
 */

export const MASQ_CHAIN = "FLANNEL-POSTRTG";
export const FORWARD_CHAIN = "FLANNEL-FWD";
/** kube-proxy's masquerade mark, which flanneld leaves to kube-proxy (trafficmngr.KubeProxyMark). */
const KUBE_PROXY_MARK = "0x4000/0x4000";

const MASQ_COMMENT = '-m comment --comment "flanneld masq"';
const FORWARD_COMMENT = '-m comment --comment "flanneld forward"';
const multicast = (f: Family) => (f === 4 ? "224.0.0.0/4" : "ff00::/8");

/** masqRules / masqIP6Rules: the POSTROUTING jump, then the chain's rules, as iptables-save prints them. */
export function masqRules(
  family: Family,
  network: string,
  podSubnet: string,
  randomFully: boolean,
): string[] {
  const masq = randomFully ? "MASQUERADE --random-fully" : "MASQUERADE";
  const c = `-A ${MASQ_CHAIN}`;
  return [
    // Runs flannel's rules before the node's other POSTROUTING rules (flanneld's comment; it appends).
    `-A POSTROUTING ${MASQ_COMMENT} -j ${MASQ_CHAIN}`,
    // Traffic marked by kube-proxy is left to kube-proxy (double NAT on some kernels otherwise).
    `${c} -m mark --mark ${KUBE_PROXY_MARK} ${MASQ_COMMENT} -j RETURN`,
    // No NAT inside the overlay.
    `${c} -s ${podSubnet} -d ${network} ${MASQ_COMMENT} -j RETURN`,
    `${c} -s ${network} -d ${podSubnet} ${MASQ_COMMENT} -j RETURN`,
    // No NAT for outside traffic arriving for this node's pods.
    `${c} ! -s ${network} -d ${podSubnet} ${MASQ_COMMENT} -j RETURN`,
    // NAT pods' traffic leaving the network (not multicast), and the host's traffic into it.
    `${c} -s ${network} ! -d ${multicast(family)} ${MASQ_COMMENT} -j ${masq}`,
    `${c} ! -s ${network} -d ${network} ${MASQ_COMMENT} -j ${masq}`,
  ];
}

/** forwardRules: the FORWARD jump, then accept from and to the network. */
export function forwardRules(network: string): string[] {
  return [
    `-A FORWARD ${FORWARD_COMMENT} -j ${FORWARD_CHAIN}`,
    `-A ${FORWARD_CHAIN} -s ${network} ${FORWARD_COMMENT} -j ACCEPT`,
    `-A ${FORWARD_CHAIN} -d ${network} ${FORWARD_COMMENT} -j ACCEPT`,
  ];
}

const argsKey = (line: string) => splitArgs(line).join("\u0000");
const chainOf = (line: string) => splitArgs(line)[1]!;

/**
 * The restore lines that turn one saved table (the text between `*table` and COMMIT) into `want` (a
 * jump rule in a built-in chain plus the rules of one chain of ours); empty when it already is.
 */
export function planTable(savedTable: string, want: string[]): string[] {
  const jump = want[0]!;
  const chain = splitArgs(jump).at(-1)!;
  const body = want.filter((l) => chainOf(l) === chain);
  const lines: string[] = [];
  const have = rulesIn(savedTable, chain).map(argsKey);
  const same = have.length === body.length && have.every((k, i) => k === argsKey(body[i]!));
  if (!chainsIn(savedTable).has(chain) || !same) lines.push(`:${chain} - [0:0]`, ...body);
  const jumps = rulesIn(savedTable, chainOf(jump)).filter((l) => argsKey(l) === argsKey(jump));
  if (jumps.length === 0) lines.push(jump);
  for (const extra of jumps.slice(1)) lines.push(deletionOf(extra));
  return lines;
}

/** One iptables-restore input holding each table that has lines. */
export function restoreInput(tables: Array<{ table: string; lines: string[] }>): string {
  return tables
    .filter((t) => t.lines.length > 0)
    .map((t) => `*${t.table}\n${t.lines.join("\n")}\nCOMMIT\n`)
    .join("");
}

/** The lines that remove `chain` from a saved table: every rule jumping to it, then the chain. */
export function teardownTable(savedTable: string, chain: string): string[] {
  if (!chainsIn(savedTable).has(chain)) return [];
  return [...rulesJumpingTo(savedTable, chain).map(deletionOf), `-F ${chain}`, `-X ${chain}`];
}

/** go-iptables' HasRandomFully: iptables 1.6.2 or newer, read from `iptables --version`. */
export function hasRandomFully(versionLine: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 6 || (min === 6 && patch >= 2)));
}

const randomFullyCache = new Map<Family, Promise<boolean>>();

/** Whether MASQUERADE takes --random-fully with this family's iptables (asked once per process). */
export function supportsRandomFully(family: Family): Promise<boolean> {
  let p = randomFullyCache.get(family);
  if (!p) {
    p = iptablesVersion(family).then((v) => (v ? hasRandomFully(v) : false));
    randomFullyCache.set(family, p);
  }
  return p;
}

export interface FlannelRulesSpec extends IptablesScope {
  /** `--ip-masq`: FLANNEL-POSTRTG. */
  ipMasq: boolean;
  /** `--iptables-forward-rules`: FLANNEL-FWD. */
  forwardRules: boolean;
  /** The IPv4 network and this node's lease in it; the family is left alone without them. */
  network?: string;
  subnet?: string;
  ipv6Network?: string;
  ipv6Subnet?: string;
  /** `--random-fully` on MASQUERADE; by default when iptables supports it (flanneld's rule). */
  randomFully?: boolean;
  log?: Logger;
}

export interface RulesOutcome {
  /** What had to be (re)written, e.g. ["IPv4 nat FLANNEL-POSTRTG"]; empty when all was in place. */
  changed: string[];
}

/** The wanted rules of one family, by table. */
async function wantedRules(
  spec: FlannelRulesSpec,
  family: Family,
): Promise<Array<{ table: string; want: string[] }>> {
  const network = family === 4 ? spec.network : spec.ipv6Network;
  const subnet = family === 4 ? spec.subnet : spec.ipv6Subnet;
  if (!network) return [];
  const out: Array<{ table: string; want: string[] }> = [];
  if (spec.ipMasq && subnet) {
    const rf = spec.randomFully ?? (await supportsRandomFully(family));
    out.push({ table: "nat", want: masqRules(family, network, subnet, rf) });
  }
  if (spec.forwardRules) out.push({ table: "filter", want: forwardRules(network) });
  return out;
}

/**
 * Installs or re-checks the rules: per family, one iptables-save and, only when something differs, one
 * iptables-restore --noflush for all its tables. Safe to call every resync; a second call with nothing
 * changed in between runs no restore. Throws when a family's tools cannot be used or the restore fails.
 */
export async function ensureFlannelRules(spec: FlannelRulesSpec): Promise<RulesOutcome> {
  const changed: string[] = [];
  const scope: IptablesScope = spec.netns ? { netns: spec.netns } : {};
  for (const family of [4, 6] as const) {
    const wanted = await wantedRules(spec, family);
    if (wanted.length === 0) continue;
    const name = family === 4 ? "IPv4" : "IPv6";
    const saved = await trySaveAll(family, scope);
    if (!saved.ok) throw new Error(`cannot read the ${name} iptables rules: ${saved.message}`);
    const tables = tablesIn(saved.saved);
    const plans = wanted.map((w) => {
      const chain = splitArgs(w.want[0]!).at(-1)!;
      const text = tables.get(w.table) ?? "";
      return { table: w.table, chain, fresh: !chainsIn(text).has(chain), lines: planTable(text, w.want) };
    });
    const input = restoreInput(plans);
    if (input === "") continue;
    const r = await tryRestore(family, input, scope);
    if (!r.ok)
      throw new Error(`failed to apply the ${name} flannel rules with iptables-restore: ${r.message}`);
    for (const p of plans.filter((x) => x.lines.length > 0)) {
      changed.push(`${name} ${p.table} ${p.chain}`);
      if (p.fresh)
        spec.log?.info(`Setting up ${p.chain === MASQ_CHAIN ? "masking" : "forward"} rules (${name})`);
      else
        spec.log?.info(
          `Some iptables rules are missing; deleting and recreating rules (${name} ${p.table} ${p.chain})`,
        );
    }
  }
  return { changed };
}

/**
 * Removes FLANNEL-POSTRTG (nat) and FLANNEL-FWD (filter) with every rule jumping to them, in both
 * families: one save and one restore per family (for `weft uninstall`). A family whose iptables cannot
 * be used is skipped. Unlike flanneld's CleanUp, it looks for FLANNEL-FWD in filter and removes the jumps
 * before the chains, so the chains can go.
 */
export async function removeFlannelRules(scope: IptablesScope = {}): Promise<RulesOutcome> {
  const changed: string[] = [];
  for (const family of [4, 6] as const) {
    const saved = await trySaveAll(family, scope);
    if (!saved.ok) continue;
    const tables = tablesIn(saved.saved);
    const plans = [
      { table: "nat", chain: MASQ_CHAIN },
      { table: "filter", chain: FORWARD_CHAIN },
    ].map((t) => ({ ...t, lines: teardownTable(tables.get(t.table) ?? "", t.chain) }));
    const input = restoreInput(plans);
    if (input === "") continue;
    const r = await tryRestore(family, input, scope);
    const name = family === 4 ? "IPv4" : "IPv6";
    if (!r.ok) throw new Error(`failed to remove the ${name} flannel rules: ${r.message}`);
    for (const p of plans.filter((x) => x.lines.length > 0)) changed.push(`${name} ${p.table} ${p.chain}`);
  }
  return { changed };
}

/** What the daemon asks of the rules each resync: its network config, its lease and its flags. */
export interface RulesOptions {
  network?: string;
  ipv6Network?: string;
  lease: Lease;
  ipMasq: boolean;
  forwardRules: boolean;
  randomFully?: boolean;
  log?: Logger;
}

/** The daemon's resync: flanneld's chains for the node's lease (ensureFlannelRules). */
export async function syncRules(o: RulesOptions): Promise<void> {
  await ensureFlannelRules({
    ipMasq: o.ipMasq,
    forwardRules: o.forwardRules,
    ...(o.network ? { network: o.network } : {}),
    ...(o.lease.subnet ? { subnet: o.lease.subnet } : {}),
    ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
    ...(o.lease.ipv6Subnet ? { ipv6Subnet: o.lease.ipv6Subnet } : {}),
    ...(o.randomFully !== undefined ? { randomFully: o.randomFully } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
}
