import { isIP } from "node:net";
import type { Logger } from "../shared/log.js";
import { ipBatch } from "../shared/net/ip.js";
import { canonicalIpText, containsText } from "../shared/net/ipaddr.js";
import type { LinkRecord } from "../shared/net/link.js";
import { mainTableRoutes, type RouteRecord, routeShow } from "../shared/net/route.js";
import type { ExternalInterface } from "./backend/backend.js";

/**
 * The underlay interface weftd sends node-to-node traffic by, found as flanneld finds it (main.go and
 * pkg/ipmatch LookupExtIface): each `--iface` (a name or an address) in order, the first that matches
 * wins; without `--iface`, the interface holding `--public-ip` when one is given, else the interface of
 * the default route. Its first usable address (flanneld's order) is the interface address; the public
 * IP is `--public-ip` or that address. Everything is read in one `ip -batch` (netlink), in the namespace
 * weftd runs in.
 */
export interface ExtIfaceOptions {
  /** `--iface` values, in order: interface names or addresses. */
  iface?: string[];
  publicIp?: string;
  publicIpv6?: string;
  /** The families the network uses (net-conf EnableIPv4, default true / EnableIPv6, default false). */
  ipv4?: boolean;
  ipv6?: boolean;
  /** Run the reads in this network namespace (tests). */
  netns?: string;
  log?: Logger;
}

/** What the choice is made from: links with their addresses, and each family's routes. */
export interface NetState {
  links: LinkRecord[];
  routes4: RouteRecord[];
  routes6: RouteRecord[];
}

type Family = 4 | 6;

interface AddrInfo {
  family: "inet" | "inet6";
  local: string;
  dynamic?: boolean;
  temporary?: boolean;
  deprecated?: boolean;
}

const V4_NOT_UNICAST = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"];
const V6_NOT_UNICAST = ["::/128", "::1/128", "ff00::/8"];
const isLinkLocal = (ip: string, f: Family) => containsText(f === 4 ? "169.254.0.0/16" : "fe80::/10", ip);

/** Go's IsGlobalUnicast || IsLinkLocalUnicast, the addresses flanneld considers. */
function usable(ip: string, f: Family): boolean {
  return !(f === 4 ? V4_NOT_UNICAST : V6_NOT_UNICAST).some((n) => containsText(n, ip));
}

/**
 * A link's usable addresses of a family in flanneld's order of preference (GetInterfaceIP4Addrs and
 * compareAddrs): not deprecated; global before link-local, permanent before dynamic, non-temporary first.
 */
export function usableAddrs(link: LinkRecord, f: Family): string[] {
  const rank = (a: AddrInfo) =>
    (isLinkLocal(a.local, f) ? 4 : 0) + (a.dynamic ? 2 : 0) + (a.temporary ? 1 : 0);
  return ((link.addr_info ?? []) as AddrInfo[])
    .filter((a) => a.family === (f === 4 ? "inet" : "inet6") && !a.deprecated && usable(a.local, f))
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map(({ a }) => canonicalIpText(a.local));
}

/** flanneld's GetDefaultGatewayInterface: the first default route of the main table, by its device. */
function defaultRouteLink(s: NetState, f: Family): LinkRecord {
  const v = f === 6 ? " v6" : "";
  const route = (f === 4 ? s.routes4 : s.routes6).find((r) => r.dst === "default");
  if (!route) throw new Error(`failed to get default${v} interface: unable to find default${v} route`);
  const link = route.dev ? s.links.find((l) => l.ifname === route.dev) : undefined;
  if (!link) {
    throw new Error(
      `failed to get default${v} interface: found default${v} route but could not determine interface`,
    );
  }
  return link;
}

interface Match {
  link: LinkRecord;
  addr4?: string;
  addr6?: string;
}

function byAddress(s: NetState, ip: string): Match {
  const want = canonicalIpText(ip);
  const f: Family = isIP(ip) === 4 ? 4 : 6;
  const link = s.links.find((l) =>
    ((l.addr_info ?? []) as AddrInfo[]).some(
      (a) => a.family === (f === 4 ? "inet" : "inet6") && canonicalIpText(a.local) === want,
    ),
  );
  if (!link) throw new Error(`no interface with address ${ip}`);
  return f === 4 ? { link, addr4: want } : { link, addr6: want };
}

function byName(s: NetState, name: string): Match {
  const link = s.links.find((l) => l.ifname === name);
  if (!link) throw new Error(`interface ${name} not found`);
  return { link };
}

/** One `--iface` value (or the public IP standing in for it), resolved with the addresses it needs. */
function resolve(s: NetState, value: string, want4: boolean, want6: boolean): Match {
  const m = isIP(value) !== 0 ? byAddress(s, value) : byName(s, value);
  if (m.addr4 && !want4) throw new Error(`${value} is an IPv4 address but the network has no IPv4`);
  if (m.addr6 && !want6) throw new Error(`${value} is an IPv6 address but the network has no IPv6`);
  if (want4 && !m.addr4) {
    m.addr4 = usableAddrs(m.link, 4)[0];
    if (!m.addr4) throw new Error(`failed to find IPv4 address for interface ${m.link.ifname}`);
  }
  if (want6 && !m.addr6) {
    m.addr6 = usableAddrs(m.link, 6)[0];
    if (!m.addr6) throw new Error(`failed to find IPv6 address for interface ${m.link.ifname}`);
  }
  return m;
}

function publicAddr(given: string | undefined, family: Family): string | undefined {
  if (given === undefined || given === "") return undefined;
  if (isIP(given) !== family)
    throw new Error(`invalid public IP${family === 6 ? "v6" : ""} address: ${given}`);
  return canonicalIpText(given);
}

/** The choice itself, from state already read (pure, for unit tests). */
export function chooseExternalInterface(
  s: NetState,
  o: Omit<ExtIfaceOptions, "netns" | "log">,
): ExternalInterface {
  const want4 = o.ipv4 ?? true;
  const want6 = o.ipv6 ?? false;
  if (!want4 && !want6) throw new Error("neither IPv4 nor IPv6 is enabled in the network config");
  const pub4 = publicAddr(o.publicIp, 4);
  const pub6 = publicAddr(o.publicIpv6, 6);

  let m: Match;
  if (o.iface && o.iface.length > 0) {
    const reasons: string[] = [];
    let found: Match | undefined;
    for (const value of o.iface) {
      try {
        found = resolve(s, value, want4, want6);
        break;
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    if (!found) throw new Error(`no interface given with --iface matched: ${reasons.join("; ")}`);
    m = found;
  } else if (pub4 ?? pub6) {
    // flanneld looks the interface up by the public IP when no --iface is given.
    m = resolve(s, (pub4 ?? pub6)!, want4, want6);
  } else {
    const link = defaultRouteLink(s, want4 ? 4 : 6);
    if (want4 && want6) {
      const v6 = defaultRouteLink(s, 6);
      if (v6.ifname !== link.ifname) {
        throw new Error(
          `v6 default route interface ${v6.ifname} must be the same with v4 default route interface ${link.ifname}`,
        );
      }
    }
    m = resolve(s, link.ifname, want4, want6);
  }

  const ext: ExternalInterface = { name: m.link.ifname, index: m.link.ifindex, mtu: m.link.mtu };
  if (want4) {
    ext.ifaceAddr = m.addr4!;
    ext.publicIp = pub4 ?? m.addr4!;
  }
  if (want6) {
    ext.ifaceV6Addr = m.addr6!;
    ext.publicIpv6 = pub6 ?? m.addr6!;
  }
  return ext;
}

/** Reads the links, addresses and routes (one ip process) and chooses the external interface. */
export async function findExternalInterface(o: ExtIfaceOptions = {}): Promise<ExternalInterface> {
  const [links, routes4, routes6] = await ipBatch(
    [
      { line: "addr show", what: "list the interfaces and their addresses", read: true },
      routeShow(4, "list the IPv4 routes"),
      routeShow(6, "list the IPv6 routes"),
    ],
    o.netns ? { netns: o.netns } : {},
  );
  const ext = chooseExternalInterface(
    {
      links: (links ?? []) as LinkRecord[],
      routes4: mainTableRoutes(routes4),
      routes6: mainTableRoutes(routes6),
    },
    o,
  );
  // flanneld's lines (main.go, ipmatch), which operators grep for.
  const log = o.log;
  if (log) {
    if (!o.iface?.length && !o.publicIp && !o.publicIpv6)
      log.info("Determining IP address of default interface");
    if (ext.ifaceAddr) log.info(`Using interface with name ${ext.name} and address ${ext.ifaceAddr}`);
    if (ext.ifaceV6Addr) log.info(`Using interface with name ${ext.name} and v6 address ${ext.ifaceV6Addr}`);
    if (ext.publicIp) {
      if (o.publicIp) log.info(`Using ${ext.publicIp} as external address`);
      else log.info(`Defaulting external address to interface address (${ext.ifaceAddr})`);
    }
    if (ext.publicIpv6) {
      if (o.publicIpv6) log.info(`Using ${ext.publicIpv6} as external address`);
      else log.info(`Defaulting external v6 address to interface address (${ext.ifaceV6Addr})`);
    }
  }
  return ext;
}
