import { readFile } from "node:fs/promises";
import { endianness } from "node:os";
import { contains, type IP, tryParseIp } from "./ipaddr.js";
import { run } from "./run.js";

/**
 * Which host interface the kernel routes an address through (the reference's netlink RouteGet). Kept
 * apart from route.ts, which the bridge's ADD loads: only portmap asks.
 */

/** `/proc/net/route` prints addresses as the host-order hex of the network-order word. */
function procAddress(hex: string): IP {
  const bytes = [...Buffer.from(hex, "hex")];
  const value = (endianness() === "LE" ? bytes.reverse() : bytes).reduce((v, b) => (v << 8n) | BigInt(b), 0n);
  return { family: 4, value };
}

const RTF_UP = 0x1;

/**
 * The interface of the main table's longest-prefix route to `ip` (lowest metric among equals), from
 * /proc/net/route: what `ip route get` answers when no policy rule sends pod traffic elsewhere, without
 * starting a process.
 */
export function mainTableInterface(procNetRoute: string, ip: string): string | undefined {
  const dst = tryParseIp(ip);
  if (dst?.family !== 4) return undefined;
  let best: { dev: string; bits: number; metric: number } | undefined;
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !(Number.parseInt(f[3]!, 16) & RTF_UP)) continue;
    // The mask's prefix length is its count of set bits (the kernel's masks are contiguous).
    const bits = [...Number.parseInt(f[7]!, 16).toString(2)].filter((b) => b === "1").length;
    if (!contains({ ip: procAddress(f[1]!), prefix: bits }, dst)) continue;
    const metric = Number(f[6]);
    if (!best || bits > best.bits || (bits === best.bits && metric < best.metric)) {
      best = { dev: f[0]!, bits, metric };
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
