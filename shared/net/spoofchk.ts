import { run } from "./run.js";

/**
 * MAC spoof check on a bridge port, with the reference's nftables layout (pkg/link/spoofcheck.go): table
 * `bridge nat`, base chain PREROUTING (filter, hook prerouting, priority -300, policy accept), and per
 * attachment `refID = <containerID>-<ifname>`:
 *
 *   PREROUTING:                 iifname "<hostVeth>" jump cni-br-iface-<refID>
 *   cni-br-iface-<refID>:       jump cni-br-iface-<refID>-mac
 *   cni-br-iface-<refID>-mac:   ether saddr <mac> return; drop
 *
 * every rule commented `macspoofchk-<refID>`. Setup is one `nft -f -` transaction.
 */
const TABLE = "bridge nat";

export const spoofRefId = (containerId: string, ifname: string) => `${containerId}-${ifname}`;
export const spoofIfaceChain = (refId: string) => `cni-br-iface-${refId}`;
const comment = (refId: string) => `"macspoofchk-${refId}"`;
const quoted = (s: string) => `"${s}"`;

export function spoofSetupScript(hostIface: string, mac: string, refId: string): string {
  // nft 1.0 takes chain names only as bare identifiers (letters, digits, "-", "_", ".", "/").
  const iface = spoofIfaceChain(refId);
  const macChain = `${iface}-mac`;
  const c = comment(refId);
  return [
    `add table ${TABLE}`,
    `add chain ${TABLE} PREROUTING { type filter hook prerouting priority -300 ; policy accept ; }`,
    `add chain ${TABLE} ${iface}`,
    `add chain ${TABLE} ${macChain}`,
    `flush chain ${TABLE} ${iface}`,
    `flush chain ${TABLE} ${macChain}`,
    `add rule ${TABLE} PREROUTING iifname ${quoted(hostIface)} jump ${iface} comment ${c}`,
    `add rule ${TABLE} ${iface} jump ${macChain} comment ${c}`,
    `add rule ${TABLE} ${macChain} ether saddr ${mac} return comment ${c}`,
    `add rule ${TABLE} ${macChain} drop comment ${c}`,
    "",
  ].join("\n");
}

export async function setupSpoofCheck(hostIface: string, mac: string, refId: string): Promise<void> {
  try {
    await run("nft", ["-f", "-"], { input: spoofSetupScript(hostIface, mac, refId) });
  } catch (err) {
    throw new Error(`failed to setup spoof-check: ${(err as Error).message}`, { cause: err });
  }
}

/** Handles of PREROUTING rules carrying this attachment's comment, from `nft -a list chain` output. */
export function spoofRuleHandles(listing: string, refId: string): number[] {
  const want = `comment ${comment(refId)}`;
  const out: number[] = [];
  for (const line of listing.split("\n")) {
    const m = /# handle (\d+)\s*$/.exec(line);
    if (m && line.includes(want)) out.push(Number(m[1]));
  }
  return out;
}

/** Removes the attachment's PREROUTING rule and both chains; the table and base chain stay. */
export async function teardownSpoofCheck(refId: string): Promise<void> {
  const listing = await run("nft", ["-a", "list", "chain", "bridge", "nat", "PREROUTING"], {
    allowFail: true,
  });
  if (listing.exitCode !== 0) return; // no table, so nothing of ours either
  const lines = spoofRuleHandles(listing.stdout, refId).map(
    (h) => `delete rule ${TABLE} PREROUTING handle ${h}`,
  );
  const chains = await run("nft", ["list", "chains", "bridge"], { allowFail: true });
  const iface = spoofIfaceChain(refId);
  for (const name of [iface, `${iface}-mac`]) {
    if (new RegExp(`chain ${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\{`).test(chains.stdout))
      lines.push(`delete chain ${TABLE} ${name}`);
  }
  if (lines.length === 0) return;
  try {
    await run("nft", ["-f", "-"], { input: `${lines.join("\n")}\n` });
  } catch (err) {
    throw new Error(`failed to teardown spoof-check: ${(err as Error).message}`, { cause: err });
  }
}
