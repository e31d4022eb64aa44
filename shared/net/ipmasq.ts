import { createHash } from "node:crypto";
import { bitsOf, familyOfText, formatCidr, formatIp, networkOf, parseCidr } from "./ipaddr.js";
import {
  applyRules,
  chainDeclaration,
  deletionOf,
  type Family,
  iptables,
  rulesIn,
  saveTable,
  splitArgs,
} from "./iptables.js";

/**
 * Source NAT for pod addresses, with the reference's iptables layout (pkg/ip/ipmasq_iptables_linux.go) so
 * either implementation can remove the other's rules:
 *
 *   -A POSTROUTING -s <ip>/32 -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j CNI-<hash>
 *   -A CNI-<hash> -d <subnet> -m comment --comment ... -j ACCEPT
 *   -A CNI-<hash> ! -d 224.0.0.0/4 -m comment --comment ... -j MASQUERADE
 *
 * with <hash> = the first 24 hex digits of sha512(<net> + <cid>). Everything is derived from the network
 * name and container ID, so teardown needs neither the pod's namespace nor its addresses.
 */

/** utils.FormatChainName("CNI-", name, id): 28 characters in total. */
export function masqChainName(network: string, containerId: string): string {
  return `CNI-${createHash("sha512")
    .update(network + containerId)
    .digest("hex")
    .slice(0, 24)}`;
}

/** utils.FormatComment. */
export function masqComment(network: string, containerId: string): string {
  return `name: "${network}" id: "${containerId}"`;
}

/** The comment as iptables-save prints it, and as iptables-restore reads it back. */
export function quoteComment(comment: string): string {
  return `"${comment.replace(/(["\\])/g, "\\$1")}"`;
}

const multicast = (f: Family) => (f === 4 ? "224.0.0.0/4" : "ff00::/8");

/** The POSTROUTING rule that sends a pod address's traffic to its chain (as saved, without "-A"). */
export function masqJumpSpec(ip: string, chain: string, comment: string): string {
  const { ip: addr } = parseCidr(ip);
  return `POSTROUTING -s ${formatIp(addr)}/${bitsOf(addr.family)} -m comment --comment ${quoteComment(comment)} -j ${chain}`;
}

/**
 * The restore lines for one family: the chain (declaring it flushes it under --noflush, which makes a
 * repeated setup idempotent), one ACCEPT per pod subnet, the MASQUERADE rule and, for each address in
 * `jumps`, its POSTROUTING jump.
 */
export function masqRestoreLines(
  family: Family,
  addrs: string[],
  chain: string,
  comment: string,
  jumps: string[],
): string[] {
  const c = quoteComment(comment);
  const lines = [chainDeclaration(chain)];
  for (const a of addrs)
    lines.push(`-A ${chain} -d ${formatCidr(networkOf(parseCidr(a)))} -m comment --comment ${c} -j ACCEPT`);
  lines.push(`-A ${chain} ! -d ${multicast(family)} -m comment --comment ${c} -j MASQUERADE`);
  for (const ip of jumps) lines.push(`-A ${masqJumpSpec(ip, chain, comment)}`);
  return lines;
}

/** SetupIPMasq for the pod's addresses (CIDRs with the pod prefix length). */
export async function setupIpMasq(addrs: string[], network: string, containerId: string): Promise<void> {
  const chain = masqChainName(network, containerId);
  const comment = masqComment(network, containerId);
  for (const family of [4, 6] as const) {
    const mine = addrs.filter((a) => familyOfText(a) === family);
    if (mine.length === 0) continue;
    // A repeated ADD must not duplicate the jump; -C fails too when the chain does not exist yet.
    const jumps: string[] = [];
    for (const a of mine) {
      const args = ["-t", "nat", "-C", ...splitArgs(masqJumpSpec(a, chain, comment))];
      if (!(await iptables(family, args))) jumps.push(a);
    }
    await applyRules(family, "nat", masqRestoreLines(family, mine, chain, comment, jumps));
  }
}

/**
 * Removes a chain and every POSTROUTING jump to it, in each family where it exists. Works without the pod
 * addresses (the reference's teardown needs them and leaks when the netns is gone). A family whose
 * iptables is unusable is skipped.
 */
export async function teardownIpMasq(network: string, containerId: string): Promise<void> {
  await removeMasqChains([masqChainName(network, containerId)]);
}

/** Deletes the given CNI-… chains and the POSTROUTING rules jumping to them, in both families. */
export async function removeMasqChains(chains: string[], families: Family[] = [4, 6]): Promise<void> {
  if (chains.length === 0) return;
  for (const family of families) {
    let saved: string;
    try {
      saved = await saveTable(family, "nat");
    } catch {
      continue;
    }
    const lines = masqTeardownLines(saved, chains);
    if (lines.length > 0) await applyRules(family, "nat", lines);
  }
}

/** The restore lines that delete `chains` and the jumps to them, given the saved nat table. */
export function masqTeardownLines(saved: string, chains: string[]): string[] {
  const present = new Set(chains.filter((c) => saved.includes(`:${c} `)));
  const lines: string[] = [];
  for (const rule of rulesIn(saved, "POSTROUTING")) {
    const target = / -j (\S+)\s*$/.exec(rule)?.[1];
    if (target && chains.includes(target)) lines.push(deletionOf(rule));
  }
  for (const c of present) lines.push(`-F ${c}`, `-X ${c}`);
  return lines;
}

/**
 * The masquerade chains of `network` found in a saved nat table, with the container ID their comment
 * names. Only chains whose rules carry exactly this network's comment are returned.
 */
export function masqChainsOf(saved: string, network: string): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `--comment ${quoteComment(`name: "${network}" id: "`).slice(0, -1)}`;
  for (const rule of rulesIn(saved)) {
    const m = /^-A (CNI-[0-9a-f]{24}) /.exec(rule);
    if (!m) continue;
    const at = rule.indexOf(prefix);
    if (at < 0) continue;
    const rest = rule.slice(at + prefix.length);
    const id = /^(.*?)\\"" /.exec(rest)?.[1];
    if (id !== undefined && masqChainName(network, id) === m[1]) out.set(m[1]!, id);
  }
  return out;
}

/** Removes this network's masquerade chains whose container is not in `keep`. Returns the chains removed. */
export async function gcIpMasq(network: string, keep: Set<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const family of [4, 6] as const) {
    let saved: string;
    try {
      saved = await saveTable(family, "nat");
    } catch {
      continue;
    }
    const stale = [...masqChainsOf(saved, network)].filter(([, id]) => !keep.has(id)).map(([c]) => c);
    const lines = masqTeardownLines(saved, stale);
    if (lines.length > 0) await applyRules(family, "nat", lines);
    removed.push(...stale);
  }
  return removed;
}
