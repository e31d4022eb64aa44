import { readFile, writeFile } from "node:fs/promises";
import { run } from "../../shared/net/run.js";

/**
 * Localhost access to a hostPort (`127.0.0.1:<hostPort>` on the node) sends packets with a 127/8
 * source across a routing boundary, which the kernel treats as martian unless `route_localnet` is set
 * on the outgoing interface. The reference sets it on the interface routing to the container (e.g. the
 * bridge). IPv6 has no equivalent, so `::1` is not mapped.
 */

/** The host interface the kernel would send traffic for `ip` through (the reference's RouteGet). */
export async function routableHostInterface(ip: string): Promise<string | undefined> {
  const r = await run("ip", ["-j", "route", "get", ip], { allowFail: true });
  if (r.exitCode !== 0) return undefined;
  try {
    const routes = JSON.parse(r.stdout) as Array<{ dev?: string }>;
    return routes.find((x) => x.dev)?.dev;
  } catch {
    return undefined;
  }
}

/** Sets net.ipv4.conf.<ifname>.route_localnet=1 unless it already is. */
export async function enableRouteLocalnet(ifname: string): Promise<void> {
  if (ifname.includes("/") || ifname.startsWith(".")) throw new Error(`invalid interface name ${ifname}`);
  const path = `/proc/sys/net/ipv4/conf/${ifname}/route_localnet`;
  if ((await readFile(path, "utf8")).trim() === "1") return;
  await writeFile(path, "1");
}
