import { createHash } from "node:crypto";
import { type ContainerNet, hostIpMatch, ipPort, mappingApplies, type PortMapConfig } from "./config.js";

/**
 * The iptables layout of the reference portmap (portmap_iptables.go), rule for rule, so that either
 * implementation can find and remove what the other installed. All chains live in the nat table.
 *
 *   PREROUTING, OUTPUT:  -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
 *   CNI-HOSTPORT-DNAT:   <comment> -m multiport -p tcp --destination-ports 8080,8081 -j CNI-DN-<hash>
 *   CNI-DN-<hash>:       mark hairpin and localhost traffic for masquerade, then DNAT
 *   POSTROUTING (first): -j CNI-HOSTPORT-MASQ, which masquerades marked packets
 */

// These names "should never be changed, or else upgrading will require manual intervention".
export const TOP_LEVEL_DNAT_CHAIN = "CNI-HOSTPORT-DNAT";
export const SET_MARK_CHAIN = "CNI-HOSTPORT-SETMARK";
export const MARK_MASQ_CHAIN = "CNI-HOSTPORT-MASQ";
/** Created by old reference versions; only ever torn down. */
export const OLD_TOP_LEVEL_SNAT_CHAIN = "CNI-HOSTPORT-SNAT";

export interface Chain {
  name: string;
  /** Chains that get an entry rule jumping here. */
  entryChains: string[];
  /** The match part of each entry rule (`-j <name>` is added). */
  entryRules: string[][];
  /** The chain's own rules, in order. */
  rules: string[][];
  /** Entry rules go first in their chain (only the MASQ entry, ahead of bridge/ptp ipMasq rules). */
  prependEntry: boolean;
}

const MAX_CHAIN_LENGTH = 28;

/** utils.FormatChainName: `CNI-` + prefix + sha512(name + id) in hex, cut to 28 characters. */
export function chainName(prefix: string, netName: string, containerId: string): string {
  const head = `CNI-${prefix}`;
  const hash = createHash("sha512")
    .update(netName + containerId)
    .digest("hex");
  return head + hash.slice(0, MAX_CHAIN_LENGTH - head.length);
}

export const dnatChainName = (netName: string, containerId: string) => chainName("DN-", netName, containerId);
export const oldSnatChainName = (netName: string, containerId: string) =>
  chainName("SN-", netName, containerId);

/** `%#x/%#x` of the mark bit, e.g. 0x2000/0x2000 for bit 13. */
export function markDef(bit: number): string {
  const v = `0x${(2 ** bit).toString(16)}`;
  return `${v}/${v}`;
}

/**
 * The comment of the per-container entry rules, cut like the reference's trimComment: 253 characters
 * plus "..." (256; iptables then stores the first 255, so the kernel holds the same text either way).
 */
export function dnatComment(netName: string, containerId: string): string {
  const c = `dnat name: "${netName}" id: "${containerId}"`;
  return c.length <= 255 ? c : `${c.slice(0, 253)}...`;
}

export function topLevelDnatChain(): Chain {
  return {
    name: TOP_LEVEL_DNAT_CHAIN,
    entryChains: ["PREROUTING", "OUTPUT"],
    entryRules: [["-m", "addrtype", "--dst-type", "LOCAL"]],
    rules: [],
    prependEntry: false,
  };
}

export function setMarkChain(bit: number): Chain {
  return {
    name: SET_MARK_CHAIN,
    entryChains: [],
    entryRules: [],
    rules: [
      [
        "-m",
        "comment",
        "--comment",
        "CNI portfwd masquerade mark",
        "-j",
        "MARK",
        "--set-xmark",
        markDef(bit),
      ],
    ],
    prependEntry: false,
  };
}

export function markMasqChain(bit: number): Chain {
  return {
    name: MARK_MASQ_CHAIN,
    entryChains: ["POSTROUTING"],
    entryRules: [["-m", "comment", "--comment", "CNI portfwd requiring masquerade"]],
    rules: [["-m", "mark", "--mark", markDef(bit), "-j", "MASQUERADE"]],
    prependEntry: true,
  };
}

/** multiport takes at most 15 ports per rule. */
export function splitPortList(ports: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ports.length; i += 15) out.push(ports.slice(i, i + 15).join(","));
  return out;
}

/**
 * The per-container chain with its entry rules (fillDnatRules). Entry rules group host ports by
 * protocol (protocols sorted, ports in input order, including mappings of the other family as the
 * reference does); the chain gets, per mapping of this family: the hairpin mark, the localhost mark
 * (IPv4 without masqAll) when snat is on, then the DNAT.
 */
export function dnatChain(conf: PortMapConfig, net: ContainerNet): Chain {
  const comment = dnatComment(conf.name, conf.containerId);
  const conditions = net.family === 6 ? conf.conditionsV6 : conf.conditionsV4;
  const setMark = conf.externalSetMarkChain ?? SET_MARK_CHAIN;

  const byProto = new Map<string, number[]>();
  for (const pm of conf.mappings)
    byProto.set(pm.protocol, [...(byProto.get(pm.protocol) ?? []), pm.hostPort]);
  const entryRules: string[][] = [];
  for (const proto of [...byProto.keys()].sort()) {
    for (const ports of splitPortList(byProto.get(proto)!)) {
      entryRules.push([
        "-m",
        "comment",
        "--comment",
        comment,
        "-m",
        "multiport",
        "-p",
        proto,
        "--destination-ports",
        ports,
        ...conditions,
      ]);
    }
  }

  const rules: string[][] = [];
  for (const pm of conf.mappings) {
    if (!mappingApplies(pm, net.family)) continue;
    const dst = hostIpMatch(pm);
    const base = ["-p", pm.protocol, "--dport", String(pm.hostPort), ...(dst ? ["-d", dst] : [])];
    if (conf.snat) {
      const masqCidr = conf.masqAll ? (net.family === 6 ? "::/0" : "0.0.0.0/0") : net.cidr;
      rules.push([...base, "-s", masqCidr, "-j", setMark]);
      if (net.family === 4 && !conf.masqAll) rules.push([...base, "-s", "127.0.0.1", "-j", setMark]);
    }
    rules.push([...base, "-j", "DNAT", "--to-destination", ipPort(net, pm.containerPort)]);
  }

  return {
    name: dnatChainName(conf.name, conf.containerId),
    entryChains: [TOP_LEVEL_DNAT_CHAIN],
    entryRules,
    rules,
    prependEntry: false,
  };
}

/** The shared chains an ADD needs before the container chain, in the reference's setup order. */
export function sharedChains(conf: PortMapConfig): Chain[] {
  const out: Chain[] = [];
  if (conf.snat && conf.externalSetMarkChain === undefined) {
    out.push(setMarkChain(conf.markMasqBit), markMasqChain(conf.markMasqBit));
  }
  out.push(topLevelDnatChain());
  return out;
}
