export type IpMasqBackend = "iptables" | "nftables";

/**
 * The reference's choice when `ipMasqBackend` is unset: iptables, unless iptables is unusable and nft
 * is usable. With neither usable it stays iptables, whose failure is then the one reported.
 */
export function pickIpMasqBackend(
  configured: IpMasqBackend | undefined,
  usable: { iptables: boolean; nftables: boolean },
): IpMasqBackend {
  if (configured) return configured;
  return !usable.iptables && usable.nftables ? "nftables" : "iptables";
}

/**
 * The backend for this call. Probes only when the config leaves it open, and nft only when iptables
 * is unusable (otherwise its answer cannot change the choice), so a working iptables host pays one
 * `iptables -S INPUT 1` (the usability test go-iptables gives the reference).
 */
export async function ipMasqBackendFor(configured: IpMasqBackend | undefined): Promise<IpMasqBackend> {
  if (configured) return configured;
  // Loaded here, as main.ts loads the masquerade modules: only calls with ipMasq pay for them.
  const { iptablesUsable } = await import("../../shared/net/iptables.js");
  const iptables = await iptablesUsable(4);
  const nftables = iptables ? false : await (await import("../../shared/net/nft.js")).nftUsable();
  return pickIpMasqBackend(configured, { iptables, nftables });
}
