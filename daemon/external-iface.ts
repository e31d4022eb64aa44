import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { ExternalInterface } from "./backend/backend.js";

/**
 * PLACEHOLDER on branch `core`: the backend branch owns this module and its version replaces this one
 * when merging (same signature). This stand-in only does what the daemon's own tests need: the named
 * interface (or the one holding the named address), else the default route's, with its first addresses.
 */
const run = promisify(execFile);

interface AddrInfo {
  family: string;
  local: string;
  scope?: string;
}
interface LinkAddrs {
  ifname: string;
  ifindex: number;
  mtu: number;
  addr_info?: AddrInfo[];
}

async function ipJson<T>(args: string[]): Promise<T> {
  const { stdout } = await run("ip", ["-json", ...args]);
  return JSON.parse(stdout || "[]") as T;
}

export async function findExternalInterface(opts: {
  ifaces: string[];
  publicIp?: string;
  publicIpv6?: string;
}): Promise<ExternalInterface> {
  const links = await ipJson<LinkAddrs[]>(["addr", "show"]);
  let link: LinkAddrs | undefined;
  for (const want of opts.ifaces) {
    link = links.find((l) => l.ifname === want || l.addr_info?.some((a) => a.local === want));
    if (link) break;
  }
  if (!link && opts.ifaces.length > 0) throw new Error(`no interface matches ${opts.ifaces.join(", ")}`);
  if (!link) {
    const routes = await ipJson<Array<{ dev?: string }>>(["route", "show", "default"]);
    link = links.find((l) => l.ifname === routes[0]?.dev);
    if (!link) throw new Error("no default route: name the interface with --iface");
  }
  const global = (fam: string) => link!.addr_info?.find((a) => a.family === fam && a.scope !== "link")?.local;
  const ext: ExternalInterface = { name: link.ifname, index: link.ifindex, mtu: link.mtu };
  const v4 = global("inet");
  const v6 = global("inet6");
  if (v4) ext.ifaceAddr = v4;
  if (v6) ext.ifaceV6Addr = v6;
  const pub = opts.publicIp || v4;
  const pub6 = opts.publicIpv6 || v6;
  if (pub) ext.publicIp = pub;
  if (pub6) ext.publicIpv6 = pub6;
  return ext;
}
