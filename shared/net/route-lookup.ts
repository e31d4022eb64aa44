import { readFile } from "node:fs/promises";
import { endianness } from "node:os";
import { Netmask } from "netmask";
import { run } from "./run.js";

/**
 * Which host interface the kernel routes an address through (the reference's netlink RouteGet). Kept
 * apart from route.ts, which the bridge's ADD loads: only portmap asks, and this needs netmask.
 */

/** `/proc/net/route` prints addresses as the host-order hex of the network-order word. */
function procAddress(hex: string): string {
  const bytes = [...Buffer.from(hex, "hex")];
  return (endianness() === "LE" ? bytes.reverse() : bytes).join(".");
}

const RTF_UP = 0x1;

/**
 * The interface of the main table's longest-prefix route to `ip` (lowest metric among equals), from
 * /proc/net/route: what `ip route get` answers when no policy rule sends pod traffic elsewhere, without
 * starting a process.
 */
export function mainTableInterface(procNetRoute: string, ip: string): string | undefined {
  let best: { dev: string; bits: number; metric: number } | undefined;
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !(Number.parseInt(f[3]!, 16) & RTF_UP)) continue;
    // Netmask takes no 0.0.0.0 mask, so the mask goes in as its prefix length (set bits).
    const bits = [...Number.parseInt(f[7]!, 16).toString(2)].filter((b) => b === "1").length;
    const net = new Netmask(`${procAddress(f[1]!)}/${bits}`);
    if (!net.contains(ip)) continue;
    const metric = Number(f[6]);
    if (!best || net.bitmask > best.bits || (net.bitmask === best.bits && metric < best.metric)) {
      best = { dev: f[0]!, bits: net.bitmask, metric };
    }
  }
  return best?.dev;
}

/** The host interface the kernel sends traffic for the IPv4 address `ip` through (the reference's RouteGet). */
export async function routableHostInterface(ip: string): Promise<string | undefined> {
  const table = await readFile("/proc/net/route", "utf8").catch(() => undefined);
  const dev = table === undefined ? undefined : mainTableInterface(table, ip);
  if (dev) return dev;
  const r = await run("ip", ["-j", "route", "get", ip], { allowFail: true });
  if (r.exitCode !== 0) return undefined;
  try {
    return (JSON.parse(r.stdout) as Array<{ dev?: string }>).find((x) => x.dev)?.dev;
  } catch {
    return undefined;
  }
}
