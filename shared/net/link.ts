import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { IpCommand } from "./ip.js";

/**
 * Network links: `ip link` command lines for a batch, the `ip -j -d link show` record, and reads of a
 * host link's state from /sys/class/net (no process at all; sysfs shows the namespace it was mounted in,
 * which is the host's).
 */

/** The fields of an `ip -json -details link show` entry that weft reads. */
export interface LinkRecord {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  operstate?: string;
  flags?: string[];
  master?: string;
  /** The peer's ifindex for a veth (in the peer's namespace). */
  link_index?: number;
  /** Set when the peer is in another namespace (its id as seen from this one). */
  link_netnsid?: number;
  promiscuity?: number;
  linkinfo?: {
    info_kind?: string;
    info_slave_kind?: string;
    info_slave_data?: { hairpin?: boolean; isolated?: boolean; state?: string };
    info_data?: { vlan_filtering?: number };
  };
}

export const kindOf = (l: LinkRecord): string | undefined => l.linkinfo?.info_kind;

/** The kernel's dev_valid_name, so a bad name fails before anything is changed. */
export function validLinkName(name: string): boolean {
  if (name === "" || Buffer.byteLength(name) > 15) return false;
  if (name === "." || name === "..") return false;
  return !/[/:\s]/u.test(name);
}

/** The reference's errno for a name the kernel refuses (netlink returns ERANGE for a long name). */
export function linkNameError(name: string): string {
  return Buffer.byteLength(name) > 15 ? "numerical result out of range" : "invalid argument";
}

// ip parses its batch input with shell-like quoting, so names are quoted when they need it.
export function q(word: string): string {
  return /^[\w.@%+-]+$/.test(word) ? word : `"${word.replace(/(["\\])/g, "\\$1")}"`;
}

/**
 * A `link show` read. Keep it last in a batch: ip leaves its filter on links only afterwards, so a later
 * `addr show` in the same batch prints no addresses (`addr show` carries the link fields anyway).
 */
export const linkShow = (name: string, what = `look up ${name}`): IpCommand => ({
  line: `link show dev ${q(name)}`,
  what,
  read: true,
});

export const linkSetUp = (name: string, what = `set ${name} up`): IpCommand => ({
  line: `link set dev ${q(name)} up`,
  what,
});

export const linkSetMtu = (name: string, mtu: number): IpCommand => ({
  line: `link set dev ${q(name)} mtu ${mtu}`,
  what: `set MTU of ${name} to ${mtu}`,
});

export const linkSetAddress = (name: string, mac: string, what = `set MAC of ${name}`): IpCommand => ({
  line: `link set dev ${q(name)} address ${mac}`,
  what,
});

export const linkSetPromisc = (name: string, on: boolean): IpCommand => ({
  line: `link set dev ${q(name)} promisc ${on ? "on" : "off"}`,
  what: `could not set promiscuous mode on ${JSON.stringify(name)}`,
});

export const linkSetMaster = (name: string, master: string, what: string): IpCommand => ({
  line: `link set dev ${q(name)} master ${q(master)}`,
  what,
});

export const linkDel = (name: string, what = `delete ${name}`): IpCommand => ({
  line: `link del dev ${q(name)}`,
  what,
  mayFail: /Cannot find device|does not exist|No such device/,
});

/** A host link as sysfs shows it, or undefined when there is none by that name. */
export interface SysLink {
  name: string;
  ifindex: number;
  /** The peer's ifindex for a veth, else the same as ifindex. */
  iflink: number;
  mtu: number;
  address: string;
  operstate: string;
  /** Promiscuity flag (IFF_PROMISC) as set by the user. */
  promisc: boolean;
  isBridge: boolean;
  /** The master's name when the link is a port of a bridge. */
  master?: string;
}

const sys = (name: string, file: string) => readFileSync(`/sys/class/net/${name}/${file}`, "utf8").trim();

export function sysLink(name: string): SysLink | undefined {
  if (!validLinkName(name)) return undefined;
  try {
    const flags = Number.parseInt(sys(name, "flags"), 16);
    const link: SysLink = {
      name,
      ifindex: Number(sys(name, "ifindex")),
      iflink: Number(sys(name, "iflink")),
      mtu: Number(sys(name, "mtu")),
      address: sys(name, "address"),
      operstate: sys(name, "operstate"),
      promisc: (flags & 0x100) !== 0,
      isBridge: hasEntry(`/sys/class/net/${name}`, "bridge"),
    };
    const master = masterOf(name);
    if (master) link.master = master;
    return link;
  } catch {
    return undefined;
  }
}

function hasEntry(dir: string, entry: string): boolean {
  try {
    return readdirSync(dir).includes(entry);
  } catch {
    return false;
  }
}

function masterOf(name: string): string | undefined {
  try {
    // /sys/class/net/<port>/master is a symlink to the master's directory.
    return readlinkSync(`/sys/class/net/${name}/master`).split("/").pop();
  } catch {
    return undefined;
  }
}

/** One sysfs attribute of a host link, or undefined when the link is gone. */
export function sysAttr(name: string, file: string): string | undefined {
  try {
    return sys(name, file);
  } catch {
    return undefined;
  }
}

/**
 * Waits until a host link is oper-up, polling sysfs: first at once, then at growing short intervals up to
 * `budgetMs` in total (the reference sleeps 0, 50, 500, 1000, 1000 ms between netlink reads). Returns the
 * last state seen.
 */
export async function waitOperUp(name: string, budgetMs = 2550): Promise<string> {
  const start = Date.now();
  let delay = 1;
  for (;;) {
    const state = sysAttr(name, "operstate") ?? "notpresent";
    if (state === "up") return state;
    if (Date.now() - start >= budgetMs) return state;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
}
