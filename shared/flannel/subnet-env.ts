import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../fs/atomic-file.js";
import { goFileError } from "../fs/go-errors.js";
import { firstHost, formatCidr, networkOf, parseCidr } from "../net/ipaddr.js";

/**
 * `subnet.env`, the file flanneld writes for the CNI plugin (default /run/flannel/subnet.env). Networks and
 * subnets are held in network form, as the reference plugin's `net.ParseCIDR` leaves them.
 */
export interface SubnetEnv {
  /** FLANNEL_NETWORK: the cluster networks (a comma list), duplicates dropped, in file order. */
  networks: string[];
  /** FLANNEL_SUBNET: this node's v4 subnet ("10.1.17.1/24" in the file becomes "10.1.17.0/24"). */
  subnet?: string;
  ipv6Networks: string[];
  ipv6Subnet?: string;
  mtu?: number;
  /** FLANNEL_IPMASQ: true only for the exact text "true". */
  ipMasq?: boolean;
}

export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";

/** `net.ParseCIDR(text)`'s network, in IPNet.String() form ("10.1.17.1/24" -> "10.1.17.0/24"). */
function networkText(text: string): string {
  return formatCidr(networkOf(parseCidr(text)));
}

/** The first address after the network address, with the prefix ("10.244.3.0/24" -> "10.244.3.1/24"). */
function firstHostText(text: string): string {
  const cidr = parseCidr(text);
  return formatCidr({ ...cidr, ip: firstHost(cidr) });
}

function networkList(value: string): string[] {
  // Each FLANNEL_NETWORK line replaces the list; exact duplicates (address and mask) are dropped.
  const out: string[] = [];
  for (const cidr of value.split(",")) {
    const n = networkText(cidr);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** strconv.ParseUint(v, 10, 32), with Go's error text. */
function parseUint32(value: string): number {
  if (!/^[0-9]+$/.test(value))
    throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(value)}: invalid syntax`);
  const n = Number(value);
  if (n > 0xffffffff)
    throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(value)}: value out of range`);
  return n;
}

/** The comma-joined names the reference reports as missing, in its order; "" when complete. */
export function missingKeys(env: SubnetEnv): string {
  const m: string[] = [];
  if (env.networks.length === 0 && env.ipv6Networks.length === 0)
    m.push("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK");
  if (env.subnet === undefined && env.ipv6Subnet === undefined)
    m.push("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET");
  if (env.mtu === undefined) m.push("FLANNEL_MTU");
  if (env.ipMasq === undefined) m.push("FLANNEL_IPMASQ");
  return m.join(", ");
}

/**
 * Parses subnet.env text the way the reference plugin does: line by line, split on the first `=`, no
 * trimming, quoting, comments or `export`; unknown keys ignored; the last line for a key wins. A known key
 * without `=` (which panics the Go plugin) is ignored, so it shows up in the "missing" error instead.
 * `file` names the file in the "is missing" error.
 */
export function parseSubnetEnv(text: string, file: string): SubnetEnv {
  const env: SubnetEnv = { networks: [], ipv6Networks: [] };
  // bufio.ScanLines: "\n" ends a line and one "\r" before it is dropped.
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  for (const line of lines) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    switch (key) {
      case "FLANNEL_NETWORK":
        env.networks = networkList(value);
        break;
      case "FLANNEL_SUBNET":
        env.subnet = networkText(value);
        break;
      case "FLANNEL_IPV6_NETWORK":
        env.ipv6Networks = networkList(value);
        break;
      case "FLANNEL_IPV6_SUBNET":
        env.ipv6Subnet = networkText(value);
        break;
      case "FLANNEL_MTU":
        env.mtu = parseUint32(value);
        break;
      case "FLANNEL_IPMASQ":
        env.ipMasq = value === "true";
        break;
    }
  }
  const missing = missingKeys(env);
  if (missing !== "") throw new Error(`${file} is missing ${missing}`);
  return env;
}

/** Reads and parses `file`; errors read like Go's (`open <file>: no such file or directory`). */
export function readSubnetEnv(file: string): SubnetEnv {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw goFileError(err, file);
  }
  return parseSubnetEnv(text, file);
}

/** What flanneld knows when it writes the file: the cluster networks and this node's leases. */
export interface SubnetFileContents {
  /** config.Network; written only with `subnet` (flanneld's EnableIPv4). */
  network?: string;
  /** The v4 lease in network form; written as its first address ("10.244.3.0/24" -> "10.244.3.1/24"). */
  subnet?: string;
  ipv6Network?: string;
  ipv6Subnet?: string;
  mtu: number;
  ipMasq: boolean;
}

/** The file's text in flanneld's order (WriteSubnetFile), `\n` line endings. */
export function formatSubnetEnv(c: SubnetFileContents): string {
  const lines: string[] = [];
  if (c.network !== undefined && c.subnet !== undefined) {
    lines.push(`FLANNEL_NETWORK=${networkText(c.network)}`, `FLANNEL_SUBNET=${firstHostText(c.subnet)}`);
  }
  if (c.ipv6Network !== undefined && c.ipv6Subnet !== undefined) {
    lines.push(
      `FLANNEL_IPV6_NETWORK=${networkText(c.ipv6Network)}`,
      `FLANNEL_IPV6_SUBNET=${firstHostText(c.ipv6Subnet)}`,
    );
  }
  lines.push(`FLANNEL_MTU=${c.mtu}`, `FLANNEL_IPMASQ=${c.ipMasq ? "true" : "false"}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Writes subnet.env as flanneld does: directories 0755, then temp file + fsync + rename with mode 0644
 * regardless of umask (renameio.WriteFile with IgnoreUmask), so the plugin never reads half a file.
 */
export function writeSubnetEnv(file: string, c: SubnetFileContents): void {
  writeFileAtomic(file, formatSubnetEnv(c), { mode: 0o644, dirMode: 0o755 });
}
