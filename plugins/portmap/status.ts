import { probeNatTable } from "../../shared/net/iptables.js";
import { probeNft } from "../../shared/net/nft.js";
import type { PortMapConfig } from "./config.js";

/**
 * Why the backend a call would use cannot work on this host, or undefined when it can. The reference
 * has no STATUS; this answers it with the checks its backends start with: iptables needs the nat table
 * of at least one family (its DEL: "neither iptables nor ip6tables is usable"), nftables needs a usable
 * `nft`, and with no `backend` configured nftables stands in for an unusable iptables, as on the other
 * verbs (backend.ts).
 */
export async function backendProblem(conf: Pick<PortMapConfig, "backend">): Promise<string | undefined> {
  if (conf.backend === "nftables") {
    const nft = await probeNft();
    return nft.ok ? undefined : `portmap nftables backend is not usable: ${nft.message}`;
  }
  const [v4, v6] = await Promise.all([probeNatTable(4), probeNatTable(6)]);
  if (v4.ok || v6.ok) return undefined;
  const iptablesWhy = `(iptables) ${v4.message}, (ip6tables) ${v6.message}`;
  if (conf.backend === "iptables") return `portmap iptables backend is not usable: ${iptablesWhy}`;
  const nft = await probeNft();
  if (nft.ok) return undefined;
  return `portmap: neither iptables nor nftables is usable: ${iptablesWhy}, (nft) ${nft.message}`;
}
