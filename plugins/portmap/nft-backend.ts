import { checkContainerIdLength } from "../../shared/cni/env.js";
import {
  deleteRuleCommand,
  listTableRules,
  type NftFamily,
  type NftRule,
  nftString,
  tryApplyNft,
} from "../../shared/net/nft.js";
import { type ContainerNet, hostIpMatch, ipPort, mappingApplies, type PortMapConfig } from "./config.js";
import type { PortMapper, RemovedUdpPorts } from "./mapper.js";

/**
 * The nftables backend, in the layout of the reference (portmap_nftables.go at HEAD): tables
 * `ip cni_hostport` and `ip6 cni_hostport`; one rule per mapping in `hostports`, commented with the
 * container ID so a DEL removes exactly that container's rules; `hostip_hostports` kept empty for
 * upgrades; `prerouting`/`output` rebuilt on every ADD (so the last ADD's conditions win).
 */

export const TABLE = "cni_hostport";
const HOSTPORTS = "hostports";
const HOSTIP_HOSTPORTS = "hostip_hostports";
const HOSTPORTS_ALL = "hostports_all";
const MASQUERADING = "masquerading";
/** The chains holding per-container rules. */
const CONTAINER_CHAINS = [HOSTPORTS, HOSTIP_HOSTPORTS, MASQUERADING];

const nftFamily = (f: 4 | 6): NftFamily => (f === 4 ? "ip" : "ip6");

/** nft refuses longer comments (NFTNL_UDATA_COMMENT_MAXLEN); each rule's comment is the container ID. */
export const NFT_COMMENT_MAX = 128;

/**
 * The commands knftables sends for one container address (forwardPorts), in its order. `stale` are
 * rules this container already has (a repeated ADD), deleted first so the ADD stays idempotent.
 */
export function addCommands(conf: PortMapConfig, net: ContainerNet, stale: NftRule[] = []): string[] {
  const ipX = nftFamily(net.family);
  const t = `${ipX} ${TABLE}`;
  const conditions = net.family === 6 ? conf.conditionsV6 : conf.conditionsV4;
  const cond = conditions.length > 0 ? `${conditions.join(" ")} ` : "";
  const comment = `comment ${nftString(conf.containerId)}`;
  const out = stale.map(deleteRuleCommand);
  out.push(
    `add table ${t} { comment "CNI portmap plugin" ; }`,
    `add chain ${t} ${HOSTPORTS}`,
    `add chain ${t} ${HOSTIP_HOSTPORTS}`,
    `add chain ${t} ${HOSTPORTS_ALL}`,
    `flush chain ${t} ${HOSTPORTS_ALL}`,
    `add rule ${t} ${HOSTPORTS_ALL} jump ${HOSTIP_HOSTPORTS}`,
    `add rule ${t} ${HOSTPORTS_ALL} jump ${HOSTPORTS}`,
    `add chain ${t} prerouting { type nat hook prerouting priority -100 ; }`,
    `flush chain ${t} prerouting`,
    `add rule ${t} prerouting ${cond}fib daddr type local jump ${HOSTPORTS_ALL}`,
    `add chain ${t} output { type nat hook output priority -100 ; }`,
    `flush chain ${t} output`,
    `add rule ${t} output ${cond}fib daddr type local jump ${HOSTPORTS_ALL}`,
  );
  if (conf.snat) out.push(`add chain ${t} ${MASQUERADING} { type nat hook postrouting priority 100 ; }`);
  for (const pm of conf.mappings) {
    if (!mappingApplies(pm, net.family)) continue;
    const dst = hostIpMatch(pm);
    const daddr = dst ? `${ipX} daddr ${dst} ` : "";
    out.push(
      `add rule ${t} ${HOSTPORTS} ${daddr}${pm.protocol} dport ${pm.hostPort} dnat to ${ipPort(net, pm.containerPort)} ${comment}`,
    );
  }
  if (conf.snat) {
    // Hairpin: the container's own address (not its subnet, unlike iptables); masqAll: any source.
    const src = conf.masqAll ? (net.family === 6 ? "::/0" : "0.0.0.0/0") : net.ip;
    out.push(
      `add rule ${t} ${MASQUERADING} ${ipX} saddr ${src} ${ipX} daddr ${net.ip} masquerade ${comment}`,
    );
    if (net.family === 4 && !conf.masqAll) {
      out.push(
        `add rule ${t} ${MASQUERADING} ${ipX} saddr 127.0.0.1 ${ipX} daddr ${net.ip} masquerade ${comment}`,
      );
    }
  }
  return out;
}

async function listRules(family: 4 | 6): Promise<NftRule[]> {
  try {
    return (await listTableRules(nftFamily(family), TABLE)) ?? [];
  } catch (err) {
    throw new Error(`could not list rules in table ${TABLE}: ${(err as Error).message}`, { cause: err });
  }
}

/** Rules in the per-container chains whose comment matches. */
function containerRules(rules: NftRule[], match: (comment: string) => boolean): NftRule[] {
  return rules.filter(
    (r) => CONTAINER_CHAINS.includes(r.chain) && r.comment !== undefined && match(r.comment),
  );
}

/** Host ports of the UDP dnat rules among `rules` (`udp dport N ... dnat`). */
export function udpPortsOf(rules: NftRule[]): number[] {
  const ports: number[] = [];
  for (const r of rules) {
    if (r.chain === MASQUERADING) continue;
    for (const e of r.expr as Array<{
      match?: { left?: { payload?: { protocol?: string; field?: string } }; right?: unknown };
    }>) {
      const p = e.match?.left?.payload;
      if (p?.protocol === "udp" && p.field === "dport" && typeof e.match?.right === "number")
        ports.push(e.match.right);
    }
  }
  return ports;
}

/** Lists `families`, deletes the rules `pick` selects in one transaction; re-lists and retries once. */
async function deleteRules(
  pick: (rules: NftRule[]) => NftRule[],
  families: Array<4 | 6> = [4, 6],
): Promise<RemovedUdpPorts> {
  const removed: RemovedUdpPorts = { 4: [], 6: [] };
  for (let attempt = 0; attempt < 2; attempt++) {
    const picked = await Promise.all(families.map(async (f) => pick(await listRules(f))));
    families.forEach((f, i) => {
      removed[f] = udpPortsOf(picked[i]!);
    });
    const r = await tryApplyNft(picked.flat().map(deleteRuleCommand));
    if (r.ok) return removed;
    if (attempt === 1) throw new Error(`error deleting nftables rules: ${r.message}`);
  }
  return removed;
}

export const nftMapper: PortMapper = {
  name: "nftables",

  async forwardPorts(conf, nets) {
    checkContainerIdLength(
      conf.containerId,
      NFT_COMMENT_MAX,
      "the nftables backend, which keeps it in each rule's comment",
    );
    // Both families in one transaction; rules this container already has are replaced.
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await Promise.all(nets.map((n) => listRules(n.family)));
      const commands = nets.flatMap((net, i) =>
        addCommands(
          conf,
          net,
          containerRules(existing[i]!, (c) => c === conf.containerId),
        ),
      );
      const r = await tryApplyNft(commands);
      if (r.ok) return;
      if (attempt === 1) throw new Error(`unable to set up nftables rules for port mappings: ${r.message}`);
    }
  },

  async checkPorts(conf, nets) {
    for (const net of nets) {
      const hostPorts = conf.mappings.filter((pm) => mappingApplies(pm, net.family)).length;
      const masq = conf.snat ? (net.family === 4 && !conf.masqAll ? 2 : 1) : 0;
      const mine = containerRules(await listRules(net.family), (c) => c === conf.containerId);
      for (const [chain, want] of [
        [HOSTPORTS, hostPorts],
        [MASQUERADING, masq],
      ] as const) {
        if (want > 0 && mine.filter((r) => r.chain === chain).length < want) {
          throw new Error(`missing hostport rules in ${JSON.stringify(chain)} chain`);
        }
      }
    }
  },

  // nft deletes a rule by its handle, which only a listing (or the ADD's echo) tells, and a handle may
  // name another rule once the table was recreated: the DEL lists the tables, as the reference does.
  teardownPlan: () => undefined,

  async unforwardPorts(conf) {
    // The families of the pod's addresses when the cached result says (what the ADD configured), else
    // both, as the reference always does.
    const known = [conf.contIPv4, conf.contIPv6].flatMap((n) => (n ? [n.family] : []));
    const families = known.length > 0 ? known : undefined;
    return deleteRules((rules) => containerRules(rules, (c) => c === conf.containerId), families);
  },

  async gc(_conf, valid) {
    // The nft rules carry only the container ID (the reference's layout), so any container not valid
    // for this network is collected: the table is shared by every network using this backend.
    await deleteRules((rules) => containerRules(rules, (c) => !valid.has(c)));
  },
};
