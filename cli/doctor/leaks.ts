import { statSync } from "node:fs";
import { join } from "node:path";
import {
  listSavedContainerIds,
  removeSavedConfig,
  savedConfigPath,
} from "../../plugins/flannel/saved-config.js";
import { dnatChainName, dnatComment, TOP_LEVEL_DNAT_CHAIN } from "../../plugins/portmap/chains.js";
import { planTeardown } from "../../plugins/portmap/iptables-backend.js";
import { withFileLock } from "../../shared/ipam/flock.js";
import { type Reservation, ReservationStore } from "../../shared/ipam/store.js";
import { ipBatch } from "../../shared/net/ip.js";
import { canonicalIpText } from "../../shared/net/ipaddr.js";
import { masqChainsOf, masqTeardownLines } from "../../shared/net/ipmasq.js";
import { type Family, rulesIn, splitArgs, tryApplyRules, trySaveTable } from "../../shared/net/iptables.js";
import { linkDel } from "../../shared/net/link.js";
import type { CniSetup } from "./conflist.js";
import { type NodeState, readKernel } from "./node.js";
import { type PodLink, readPods } from "./pods.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * Leaks (anchors 6.1, 6.7, 6.10, 6.11): what the plugins keep for a pod, left behind after the pod is
 * gone because its DEL never came or failed half-way. Each is judged against the live pods (pods.ts):
 *
 * - a host-local reservation is live while a pod attached to this node holds its address; otherwise it
 *   is leaked ("no IP addresses available in range set" once enough of them pile up);
 * - a saved flannel config, a portmap `CNI-DN-` chain and a bridge ipMasq `CNI-` chain are live while a
 *   live reservation names their container ID (a DNAT to, or a masquerade from, a live pod's address
 *   counts too);
 * - a veth on the bridge is leaked when its pod's namespace has no name any more (the runtime removed
 *   the pod; a stray process keeps the namespace) and the pod's addresses hold no reservation.
 *
 * The ADD of a pod writes its saved config and reservation before its veth carries the address, so
 * files younger than LEAK_GRACE_MS are never judged. When any pod on the bridge cannot be read, nothing
 * that pod could hold is released. `--fix` removes leaks with the plugins' own layouts (host-local's
 * lock, portmap's teardown, flannel's saved-config file), re-checking each under the lock first.
 */

export const LEAK_GRACE_MS = 60_000;

/** A portmap DNAT chain of one network: its container ID and the addresses it forwards to. */
export interface DnatChain {
  chain: string;
  containerId: string;
  destinations: string[];
}

/**
 * The `CNI-DN-` chains of network `net` in a saved nat table, found through the comment of their entry
 * rules in CNI-HOSTPORT-DNAT (`dnat name: "<net>" id: "<cid>"`), whose hash must name the chain (a
 * comment cut short for a long ID cannot be trusted and is skipped).
 */
export function dnatChainsOf(savedNat: string, net: string): DnatChain[] {
  const prefix = dnatComment(net, "").slice(0, -1);
  const out = new Map<string, DnatChain>();
  for (const line of rulesIn(savedNat, TOP_LEVEL_DNAT_CHAIN)) {
    const a = splitArgs(line);
    const comment = a[a.indexOf("--comment") + 1];
    const target = a[a.indexOf("-j") + 1];
    if (!comment?.startsWith(prefix) || !comment.endsWith('"') || !target?.startsWith("CNI-DN-")) continue;
    const containerId = comment.slice(prefix.length, -1);
    if (dnatChainName(net, containerId) !== target || out.has(target)) continue;
    const destinations = rulesIn(savedNat, target).flatMap((r) => {
      const args = splitArgs(r);
      const to = args[args.indexOf("--to-destination") + 1];
      if (!args.includes("--to-destination") || !to) return [];
      const m = /^\[([^\]]+)\]|^([^:]+)/.exec(to);
      const ip = m?.[1] ?? m?.[2];
      return ip ? [canonicalIpText(ip)] : [];
    });
    out.set(target, { chain: target, containerId, destinations: [...new Set(destinations)] });
  }
  return [...out.values()];
}

/** The source addresses of the POSTROUTING jumps to a bridge ipMasq chain (`-s 10.244.3.5/32 ... -j CNI-...`). */
function masqSources(savedNat: string, chain: string): string[] {
  return rulesIn(savedNat, "POSTROUTING").flatMap((r) => {
    const a = splitArgs(r);
    if (a[a.indexOf("-j") + 1] !== chain || !a.includes("-s")) return [];
    return [canonicalIpText(a[a.indexOf("-s") + 1]!.split("/")[0]!)];
  });
}

const age = (path: string, now: number): number => {
  try {
    return now - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
};

interface Judged {
  leaked: Reservation[];
  live: Reservation[];
  /** Not judged yet (written less than LEAK_GRACE_MS ago), counted as live. */
  young: number;
}

/** Reservations judged against the live pods' addresses. */
function judgeReservations(store: ReservationStore, liveIps: Set<string>, now: number): Judged {
  const out: Judged = { leaked: [], live: [], young: 0 };
  for (const r of store.scan()) {
    // Files that hold no reservation (empty, garbage) are free to host-local already.
    if (!r.ip || !r.owner) continue;
    if (liveIps.has(canonicalIpText(r.name))) out.live.push(r);
    else if (age(join(store.dir, r.name), now) < LEAK_GRACE_MS) {
      out.young += 1;
      out.live.push(r);
    } else out.leaked.push(r);
  }
  return out;
}

function releaseReservation(store: ReservationStore, r: Reservation): () => Promise<string> {
  return async () =>
    withFileLock(store.lockPath, async () => {
      // Under host-local's own lock: the file must still hold the same owner (no ADD can take it meanwhile).
      const now = store.scan().find((x) => x.name === r.name);
      if (!now || now.content !== r.content) return `reservation ${r.name} already changed; left alone`;
      if (!store.remove(r.name)) throw new Error(`cannot remove ${join(store.dir, r.name)}`);
      return `released ${r.name} (removed ${join(store.dir, r.name)})`;
    });
}

function removeChains(family: Family, dn: string[], masq: string[]): () => Promise<string> {
  return async () => {
    const saved = await trySaveTable(family, "nat");
    if (!saved.ok) throw new Error(`cannot read the nat table: ${saved.message}`);
    const lines = [...planTeardown(saved.saved, dn), ...masqTeardownLines(saved.saved, masq)];
    if (lines.length === 0) return `${[...dn, ...masq].join(", ")} already gone`;
    const r = await tryApplyRules(family, "nat", lines);
    if (!r.ok) throw new Error(r.message);
    const all = [...dn, ...masq];
    return `removed ${all.join(", ")} and the rules jumping to ${all.length === 1 ? "it" : "them"}`;
  };
}

function deleteVeth(pod: PodLink): () => Promise<string> {
  const name = pod.veth.ifname;
  return async () => {
    // Again, now: the same link, its peer still in a namespace nobody can name.
    const { links, netns } = await readKernel();
    const now = links.find((l) => l.ifname === name);
    if (!now || now.ifindex !== pod.veth.ifindex) return `${name} already gone`;
    if (netns.some((n) => n.id === now.link_netnsid))
      return `${name}'s pod namespace has a name again; left alone`;
    await ipBatch([linkDel(name)]);
    return `deleted ${name} (and its peer in the orphaned namespace)`;
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export async function leakChecks(node: NodeState): Promise<Check[]> {
  const setup = await node.setup();
  if (!setup.ok || !setup.value.flannel) return [skipped("leaks", "no flannel conflist (see conflist)")];
  const s: CniSetup = setup.value;
  const pods = await readPods(await node.kernel());
  const onBridge = (p: PodLink) => p.veth.master === s.bridge;
  const now = Date.now();
  const hostLocal = s.ipamType === "host-local";
  const store = hostLocal ? ReservationStore.open(s.ipamDataDir, s.name, false) : undefined;
  const reservedIps = new Set(
    (store?.scan() ?? []).filter((r) => r.ip && r.owner).map((r) => canonicalIpText(r.name)),
  );

  // Pods whose namespace lost its name: live only while IPAM still reserves their address (the runtime
  // may yet DEL them); otherwise their veth is a leak.
  const unnamed = pods.filter((p) => !p.named && !p.unresolved && onBridge(p));
  const orphaned = unnamed.filter(
    (p) => !hostLocal || p.addrs === undefined || !p.addrs.some((a) => reservedIps.has(a)),
  );
  const livePods = pods.filter((p) => !orphaned.includes(p));
  const liveIps = new Set(livePods.flatMap((p) => p.addrs ?? []));
  const unreadable = livePods.filter((p) => onBridge(p) && (p.addrs === undefined || p.addrs.length === 0));

  const leaks: Check[] = [];
  const notes: string[] = [];
  let judged = false;
  if (!store) {
    notes.push(`the IPAM plugin is ${s.ipamType}: only host-local's reservations can be judged`);
  } else if (unreadable.length > 0) {
    notes.push(
      `the address of the pod behind ${unreadable.map((p) => `${p.veth.ifname} (${p.netns ?? "?"})`).join(", ")} on ${s.bridge} cannot be read: no reservation, saved config or chain is judged`,
    );
  } else {
    judged = true;
    const res = judgeReservations(store, liveIps, now);
    const liveIds = new Set(res.live.map((r) => r.owner!.containerId));
    for (const r of res.leaked) {
      const file = join(store.dir, r.name);
      leaks.push(
        problem(
          `leak-reservation:${r.name}`,
          `${file} reserves ${r.name} for container ${r.owner!.containerId}, but no pod on this node holds that address (its DEL never came or failed): leaked addresses end in "no IP addresses available in range set"`,
          `weft doctor --fix releases it (or rm ${file} while no pod is being added)`,
          releaseReservation(store, r),
        ),
      );
    }

    // Saved flannel configs whose container no live reservation names.
    let youngConfigs = 0;
    const configs = listSavedContainerIds(s.flannelDataDir);
    for (const id of configs) {
      if (liveIds.has(id)) continue;
      const path = savedConfigPath(s.flannelDataDir, id);
      if (age(path, now) < LEAK_GRACE_MS) {
        youngConfigs += 1;
        continue;
      }
      leaks.push(
        problem(
          `leak-saved-config:${id}`,
          `${path} is the saved delegate config of container ${id}, which no live reservation names: the pod is gone and its DEL never finished`,
          `weft doctor --fix removes it (nothing holds its address any more)`,
          async () => {
            // Again, now: a reservation naming it may have appeared meanwhile (an ADD under way).
            if (store.scan().some((r) => r.owner?.containerId === id))
              return `${id} has a reservation now; left alone`;
            removeSavedConfig(s.flannelDataDir, id);
            return `removed ${path}`;
          },
        ),
      );
    }

    // portmap and bridge ipMasq chains of this network whose container is gone.
    let chains = 0;
    for (const family of [4, 6] as const) {
      const tables = await node.iptables(family);
      if (!tables.ok) continue;
      const nat = tables.value.get("nat") ?? "";
      const dn = dnatChainsOf(nat, s.name);
      const masq = [...masqChainsOf(nat, s.name)].map(([chain, containerId]) => ({
        chain,
        containerId,
        destinations: masqSources(nat, chain),
      }));
      chains += dn.length + masq.length;
      for (const c of [...dn, ...masq]) {
        if (liveIds.has(c.containerId) || c.destinations.some((d) => liveIps.has(d))) continue;
        const isDn = c.chain.startsWith("CNI-DN-");
        const to = c.destinations.length > 0 ? ` (${c.destinations.join(", ")})` : "";
        leaks.push(
          problem(
            `leak-chain:${c.chain}`,
            `${isDn ? "the hostPort chain" : "the masquerade chain"} ${c.chain} (IPv${family} nat) of container ${c.containerId}${to} outlived its pod${isDn ? ": its host ports still forward to an address the next pod may get" : ""}`,
            `weft doctor --fix removes it and the rules jumping to it`,
            removeChains(family, isDn ? [c.chain] : [], isDn ? [] : [c.chain]),
          ),
        );
      }
    }
    notes.push(
      `${plural(res.live.length, "reservation")}, ${plural(configs.length - youngConfigs, "saved config")}, ${plural(chains, "pod chain")}`,
    );
    const young = res.young + youngConfigs;
    if (young > 0)
      notes.push(`${young} younger than ${LEAK_GRACE_MS / 1000} s not judged (an ADD may be under way)`);
  }

  for (const p of orphaned) {
    const where = p.netns ? `held only by ${p.netns}` : "held by no process";
    const addr = p.addrs?.length ? `, its address ${p.addrs.join(", ")} no longer reserved` : "";
    leaks.push(
      problem(
        `leak-veth:${p.veth.ifname}`,
        `${p.veth.ifname} on ${s.bridge} leads to a pod namespace that has no name any more (${where}${addr}): the runtime removed the pod, its DEL could not reach the namespace, and the veth stayed`,
        `weft doctor --fix deletes it (ip link del ${p.veth.ifname})`,
        deleteVeth(p),
      ),
    );
  }
  if (leaks.length > 0) return leaks;
  const attached = plural(livePods.filter(onBridge).length, "pod");
  if (!judged) return [skipped("leaks", `${attached} on ${s.bridge}; ${notes.join("; ")}`)];
  return [ok("leaks", `none; ${attached} on ${s.bridge}; ${notes.join("; ")}`)];
}
