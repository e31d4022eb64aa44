import { createHash } from "node:crypto";
import { formatCidr, formatIp, networkOf, parseCidr } from "./ipaddr.js";
import { run } from "./run.js";

/**
 * Source NAT for pod addresses with the reference's nftables layout (pkg/ip/ipmasq_nftables_linux.go):
 * table `inet cni_plugins_masquerade`, a `postrouting` nat chain that skips multicast and goes to
 * `masq_checks`, and there one rule per pod address:
 *
 *   ip saddr <ip> ip daddr != <subnet> masquerade comment "<H>, net: <name>, if: <ifname>, id: <cid>"
 *
 * with H = sha512(name)[:16] "-" sha512(ifname ":" cid)[:16]; rules are found again by that prefix.
 */
const TABLE = "inet cni_plugins_masquerade";
const sha = (s: string) => createHash("sha512").update(s).digest("hex").slice(0, 16);
const strip = (s: string) => s.replace(/"/g, "");

export const nftNetworkHash = (network: string) => sha(network);

/** The rule comment's prefix for one attachment. */
export function nftMasqPrefix(network: string, ifname: string, containerId: string): string {
  return `${sha(network)}-${sha(`${ifname}:${containerId}`)}`;
}

export function nftMasqComment(network: string, ifname: string, containerId: string): string {
  const c = `${nftMasqPrefix(network, ifname, containerId)}, net: ${strip(network)}, if: ${strip(ifname)}, id: ${strip(containerId)}`;
  return c.slice(0, 128);
}

/** The masq_checks rules of a `nft -a list chain` listing: handle and comment. */
export function nftMasqRules(listing: string): Array<{ handle: number; comment: string }> {
  const out: Array<{ handle: number; comment: string }> = [];
  for (const line of listing.split("\n")) {
    const m = /comment "([^"]*)" # handle (\d+)\s*$/.exec(line);
    if (m) out.push({ handle: Number(m[2]), comment: m[1]! });
  }
  return out;
}

async function listChecks(): Promise<Array<{ handle: number; comment: string }>> {
  const r = await run("nft", ["-a", "list", "chain", ...TABLE.split(" "), "masq_checks"], {
    allowFail: true,
  });
  return r.exitCode === 0 ? nftMasqRules(r.stdout) : [];
}

async function deleteRules(handles: number[]): Promise<void> {
  if (handles.length === 0) return;
  const script = handles.map((h) => `delete rule ${TABLE} masq_checks handle ${h}`).join("\n");
  await run("nft", ["-f", "-"], { input: `${script}\n` });
}

/** The setup transaction for the pod addresses (CIDRs). */
export function nftMasqSetupScript(addrs: string[], comment: string): string {
  const lines = [
    `add table ${TABLE} { comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }`,
    `add chain ${TABLE} masq_checks { comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }`,
    `add chain ${TABLE} postrouting { type nat hook postrouting priority 100 ; }`,
    `flush chain ${TABLE} postrouting`,
    `add rule ${TABLE} postrouting ip daddr == 224.0.0.0/4 return`,
    `add rule ${TABLE} postrouting ip6 daddr == ff00::/8 return`,
    `add rule ${TABLE} postrouting goto masq_checks`,
  ];
  for (const a of addrs) {
    const cidr = parseCidr(a);
    const fam = cidr.ip.family === 4 ? "ip" : "ip6";
    lines.push(
      `add rule ${TABLE} masq_checks ${fam} saddr == ${formatIp(cidr.ip)} ${fam} daddr != ${formatCidr(networkOf(cidr))} masquerade comment "${comment}"`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export async function setupIpMasqNft(addrs: string[], network: string, ifname: string, containerId: string) {
  const prefix = nftMasqPrefix(network, ifname, containerId);
  // Stale rules of the same attachment first (a repeated ADD).
  await deleteRules((await listChecks()).filter((r) => r.comment.startsWith(prefix)).map((r) => r.handle));
  await run("nft", ["-f", "-"], {
    input: nftMasqSetupScript(addrs, nftMasqComment(network, ifname, containerId)),
  });
}

export async function teardownIpMasqNft(network: string, ifname: string, containerId: string): Promise<void> {
  const prefix = nftMasqPrefix(network, ifname, containerId);
  await deleteRules((await listChecks()).filter((r) => r.comment.startsWith(prefix)).map((r) => r.handle));
}

/** Removes this network's rules whose attachment is not in `valid`; returns their comments. */
export async function gcIpMasqNft(
  network: string,
  valid: Array<{ containerID: string; ifname: string }>,
): Promise<string[]> {
  const keep = new Set(valid.map((a) => nftMasqComment(network, a.ifname, a.containerID)));
  const stale = (await listChecks()).filter(
    (r) => r.comment.startsWith(`${sha(network)}-`) && !keep.has(r.comment),
  );
  await deleteRules(stale.map((r) => r.handle));
  return stale.map((r) => r.comment);
}
