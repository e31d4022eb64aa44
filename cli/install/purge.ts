import { type Dirent, readdirSync, readFileSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { FORWARD_CHAIN, MASQ_CHAIN } from "../../daemon/rules.js";
import {
  MARK_MASQ_CHAIN,
  OLD_TOP_LEVEL_SNAT_CHAIN,
  SET_MARK_CHAIN,
  TOP_LEVEL_DNAT_CHAIN,
} from "../../plugins/portmap/chains.js";
import { staleChains } from "../../plugins/portmap/iptables-backend.js";
import { TABLE as NFT_HOSTPORT_TABLE } from "../../plugins/portmap/nft-backend.js";
import { RECORD_DIR, recordsOf, removeRecordFiles } from "../../plugins/portmap/record.js";
import { LAST_RESERVED_PREFIX, LOCK_FILE, TEMP_PREFIX } from "../../shared/ipam/store.js";
import { ipBatch } from "../../shared/net/ip.js";
import { tryParseIp } from "../../shared/net/ipaddr.js";
import { masqChainsOf } from "../../shared/net/ipmasq.js";
import { nftMasqRules, nftNetworkHash } from "../../shared/net/ipmasq-nft.js";
import {
  chainsIn,
  deletionOf,
  type Family,
  rulesIn,
  rulesJumpingTo,
  splitArgs,
  tablesIn,
  tryRestore,
  trySaveAll,
} from "../../shared/net/iptables.js";
import { kindOf, type LinkRecord, linkDel } from "../../shared/net/link.js";
import { run } from "../../shared/net/run.js";
import type { Change } from "./change.js";
import type { NetworkState } from "./node-state.js";

/**
 * `weft uninstall --purge`: the seed's manual uninstall (delete cni0 and flannel.1, the state under
 * /var/lib/cni), limited to what weft, flanneld and the flannel list's plugins made, in the network
 * namespace it runs in, for the flannel networks of the conf dir (node-state.ts):
 *
 * - iptables: weftd's (flanneld's) FLANNEL-POSTRTG and FLANNEL-FWD; for each network, bridge's ipMasq
 *   chains `CNI-<hash>` and portmap's `CNI-DN-<hash>`, found by the comments naming the network; then
 *   portmap's shared `CNI-HOSTPORT-*` chains once no other network's container uses them. One
 *   iptables-restore per family, so a family's chains go together or not at all.
 * - nftables: portmap's `cni_hostport` tables (their rules name only container IDs, not networks, so
 *   the tables go whole) and bridge's nft masquerade rules of the networks.
 * - links: each network's bridge with the pod veths still on it, and flanneld's VXLAN devices
 *   (`flannel.<VNI>`, `flannel-v6.<VNI>`).
 * - files: flannel's saved delegate configs and host-local's reservations of the network; a directory
 *   holding anything else is left with a note (a dataDir set to a shared directory must not empty it).
 *   portmap's records of what its ADDs installed (plugins/portmap/record.ts) written in this namespace.
 *
 * Stop weftd (or flanneld) first: it puts its chains and device back within seconds.
 */
export interface PurgePlan {
  changes: Change[];
  notes: string[];
}

const familyName = (f: Family) => (f === 4 ? "IPv4" : "IPv6");

/**
 * The restore lines removing `chains` (those present) from a saved table: the jumps to them from chains
 * that stay, then every chain flushed, then every chain deleted. Chains here jump to each other
 * (CNI-HOSTPORT-DNAT -> CNI-DN-* -> CNI-HOSTPORT-SETMARK), and iptables-nft refuses (EBUSY) to delete a
 * chain in a transaction that flushes, after that, a chain which referred to it; deleting only once all
 * are flushed avoids that, and rules inside a doomed chain go with its flush.
 */
export function teardownChains(saved: string, chains: string[]): string[] {
  const doomed = new Set(chains.filter((c) => chainsIn(saved).has(c)));
  const jumps = [...doomed].flatMap((c) =>
    rulesJumpingTo(saved, c).filter((rule) => !doomed.has(splitArgs(rule)[1]!)),
  );
  return [
    ...new Set(jumps.map(deletionOf)),
    ...[...doomed].map((c) => `-F ${c}`),
    ...[...doomed].map((c) => `-X ${c}`),
  ];
}

/** The change removing chains of one family: one restore, one printed line per chain. */
function iptablesChange(
  family: Family,
  chains: Array<{ table: string; chain: string }>,
  input: string,
): Change {
  const what = (c: { table: string; chain: string }) =>
    `iptables chain ${c.table} ${c.chain} (${familyName(family)})`;
  return {
    planned: chains.map((c) => `would remove ${what(c)}`).join("\n"),
    done: chains.map((c) => `removed ${what(c)}`).join("\n"),
    apply: async () => {
      const r = await tryRestore(family, input);
      if (!r.ok) throw new Error(`removing the ${familyName(family)} chains failed: ${r.message}`);
    },
  };
}

async function planIptables(networks: NetworkState[], changes: Change[], notes: string[]): Promise<void> {
  for (const family of [4, 6] as const) {
    const saved = await trySaveAll(family);
    if (!saved.ok) {
      notes.push(`skipped the ${familyName(family)} iptables chains: ${saved.message}`);
      continue;
    }
    const tables = tablesIn(saved.saved);
    const nat = tables.get("nat") ?? "";
    const filter = tables.get("filter") ?? "";
    const natChains = new Set<string>();
    for (const n of networks) {
      for (const c of masqChainsOf(nat, n.network).keys()) natChains.add(c);
      for (const c of staleChains(nat, n.network, new Set())) natChains.add(c);
    }
    // portmap's shared chains go once nothing but the chains removed here hangs off CNI-HOSTPORT-DNAT.
    const others = rulesIn(nat, TOP_LEVEL_DNAT_CHAIN).filter((rule) => {
      const a = splitArgs(rule);
      const j = a.indexOf("-j");
      return !natChains.has(a[j + 1] ?? "");
    });
    if (others.length === 0) {
      for (const c of [TOP_LEVEL_DNAT_CHAIN, SET_MARK_CHAIN, MARK_MASQ_CHAIN, OLD_TOP_LEVEL_SNAT_CHAIN])
        natChains.add(c);
    } else {
      notes.push(
        `kept portmap's ${TOP_LEVEL_DNAT_CHAIN} (${familyName(family)}): ${others.length} rule(s) of other networks use it`,
      );
    }
    natChains.add(MASQ_CHAIN);
    const natPresent = [...natChains].filter((c) => chainsIn(nat).has(c));
    const filterPresent = [FORWARD_CHAIN].filter((c) => chainsIn(filter).has(c));
    const blocks = [
      { table: "nat", lines: teardownChains(nat, natPresent) },
      { table: "filter", lines: teardownChains(filter, filterPresent) },
    ].filter((b) => b.lines.length > 0);
    if (blocks.length === 0) continue;
    const input = blocks.map((b) => `*${b.table}\n${b.lines.join("\n")}\nCOMMIT\n`).join("");
    changes.push(
      iptablesChange(
        family,
        [
          ...natPresent.map((chain) => ({ table: "nat", chain })),
          ...filterPresent.map((chain) => ({ table: "filter", chain })),
        ],
        input,
      ),
    );
  }
}

/** `nft` output, or undefined when nft is missing or the object does not exist. */
async function nft(args: string[]): Promise<string | undefined> {
  try {
    const r = await run("nft", args, { allowFail: true });
    return r.exitCode === 0 ? r.stdout : undefined;
  } catch {
    return undefined;
  }
}

async function planNft(networks: NetworkState[], changes: Change[]): Promise<void> {
  for (const family of ["ip", "ip6"]) {
    if ((await nft(["list", "table", family, NFT_HOSTPORT_TABLE])) === undefined) continue;
    changes.push({
      planned: `would remove nftables table ${family} ${NFT_HOSTPORT_TABLE}`,
      done: `removed nftables table ${family} ${NFT_HOSTPORT_TABLE}`,
      apply: async () => {
        const r = await run("nft", ["delete", "table", family, NFT_HOSTPORT_TABLE], { allowFail: true });
        if (r.exitCode !== 0)
          throw new Error(`nft delete table ${family} ${NFT_HOSTPORT_TABLE}: ${r.stderr.trim()}`);
      },
    });
  }
  const listing = await nft(["-a", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks"]);
  if (listing === undefined) return;
  for (const n of networks) {
    const rules = nftMasqRules(listing).filter((r) => r.comment.startsWith(`${nftNetworkHash(n.network)}-`));
    if (rules.length === 0) continue;
    const what = `${rules.length} nftables masquerade rule(s) of network ${n.network}`;
    changes.push({
      planned: `would remove ${what}`,
      done: `removed ${what}`,
      apply: async () => {
        const script = rules
          .map((r) => `delete rule inet cni_plugins_masquerade masq_checks handle ${r.handle}`)
          .join("\n");
        await run("nft", ["-f", "-"], { input: `${script}\n` });
      },
    });
  }
}

/** flanneld's VXLAN devices: `flannel.<VNI>` and, dual-stack, `flannel-v6.<VNI>`. */
const FLANNEL_VXLAN = /^flannel(-v6)?\.\d+$/;

async function planLinks(networks: NetworkState[], changes: Change[]): Promise<void> {
  const reads = await ipBatch([{ line: "link show", what: "list the links", read: true }], { details: true });
  const links = (reads[0] ?? []) as LinkRecord[];
  const doomed: Array<{ name: string; why: string }> = [];
  for (const bridge of new Set(networks.flatMap((n) => (n.bridge ? [n.bridge] : [])))) {
    const br = links.find((l) => l.ifname === bridge);
    if (!br || kindOf(br) !== "bridge") continue;
    for (const port of links.filter((l) => l.master === bridge && kindOf(l) === "veth"))
      doomed.push({ name: port.ifname, why: `pod veth on ${bridge}` });
    doomed.push({ name: bridge, why: "bridge" });
  }
  for (const l of links.filter((x) => FLANNEL_VXLAN.test(x.ifname) && kindOf(x) === "vxlan"))
    doomed.push({ name: l.ifname, why: "flannel's VXLAN device" });
  for (const d of doomed) {
    changes.push({
      planned: `would delete link ${d.name} (${d.why})`,
      done: `deleted link ${d.name} (${d.why})`,
      apply: async () => {
        await ipBatch([linkDel(d.name, `delete link ${d.name}`)]);
      },
    });
  }
}

/** Whether a file of flannel's dataDir is a saved delegate config (a JSON object with a type). */
function isSavedConfig(path: string): boolean {
  try {
    const doc = JSON.parse(readFileSync(path, "utf8"));
    return typeof doc?.type === "string";
  } catch {
    return false;
  }
}

/** A crashed atomic write's leftover (weft's `.<name>.tmp-<random>`). */
const isTempFile = (name: string) => /^\..*\.tmp/.test(name);

/** host-local's files: one per reserved address, its lock, `last_reserved_ip.<n>`, temp files. */
const isIpamFile = (name: string) =>
  tryParseIp(name) !== undefined ||
  name === LOCK_FILE ||
  name.startsWith(LAST_RESERVED_PREFIX) ||
  name.startsWith(TEMP_PREFIX) ||
  isTempFile(name);

function planDir(
  dir: string,
  what: string,
  belongs: (name: string) => boolean,
  changes: Change[],
  notes: string[],
): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // nothing there
  }
  const strangers = entries.filter((e) => !e.isFile() || !belongs(e.name)).map((e) => e.name);
  if (strangers.length > 0) {
    notes.push(
      `left ${dir}: it holds ${strangers.length} entr${strangers.length === 1 ? "y" : "ies"} that ` +
        `are not ${what} (${strangers.slice(0, 3).join(", ")}${strangers.length > 3 ? ", ..." : ""})`,
    );
    return;
  }
  const count = `${entries.length} file${entries.length === 1 ? "" : "s"}`;
  changes.push({
    planned: `would remove ${dir} (${what}: ${count})`,
    done: `removed ${dir} (${what}: ${count})`,
    apply: () => {
      for (const e of entries) unlinkSync(join(dir, e.name));
      rmdirSync(dir);
    },
  });
}

function planFiles(networks: NetworkState[], changes: Change[], notes: string[]): void {
  const seen = new Set<string>();
  for (const n of networks) {
    if (n.flannelDataDir && !seen.has(n.flannelDataDir)) {
      seen.add(n.flannelDataDir);
      const dir = n.flannelDataDir;
      planDir(
        dir,
        "flannel's saved delegate configs",
        (name) => isTempFile(name) || isSavedConfig(join(dir, name)),
        changes,
        notes,
      );
    }
    if (n.ipamDir && !seen.has(n.ipamDir)) {
      seen.add(n.ipamDir);
      planDir(n.ipamDir, `host-local's reservations of ${n.network}`, isIpamFile, changes, notes);
    }
  }
}

/** portmap's records of the networks' attachments, those written in this network namespace. */
function planRecords(networks: NetworkState[], changes: Change[]): void {
  for (const n of new Set(networks.map((x) => x.network))) {
    const files = recordsOf(n);
    if (files.length === 0) continue;
    const what = `portmap's records of ${n}: ${files.length} file${files.length === 1 ? "" : "s"}`;
    changes.push({
      planned: `would remove ${join(RECORD_DIR, n)} (${what})`,
      done: `removed ${join(RECORD_DIR, n)} (${what})`,
      // Other namespaces' records of the network stay (and with them its directory).
      apply: () => removeRecordFiles(n, files),
    });
  }
}

export async function planPurge(networks: NetworkState[]): Promise<PurgePlan> {
  const changes: Change[] = [];
  const notes: string[] = [];
  await planIptables(networks, changes, notes);
  await planNft(networks, changes);
  await planLinks(networks, changes);
  planFiles(networks, changes, notes);
  planRecords(networks, changes);
  return { changes, notes };
}
