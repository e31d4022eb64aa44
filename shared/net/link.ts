import { type IpCommand, ipBatch, q } from "./ip.js";
import { sysfsAttr, sysfsShows } from "./sysfs.js";

/**
 * Network links: `ip link` command lines for a batch, the `ip -j -d link show` record, and a link's live
 * state (operstate, MAC) after a batch. Link state comes from ip's (netlink) answers: /sys/class/net
 * shows the namespace that mounted /sys, which is not this one for a caller that entered a namespace with
 * setns() (`nsenter --net=`) instead of `ip netns exec`. /sys is read only once proven to be this
 * namespace's (sysfs.ts), to poll without a process per look.
 */

/** The fields of an `ip -json -details link show` (or `addr show`) entry that weft reads. */
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
    info_data?: { vlan_filtering?: number; vlan_default_pvid?: number };
  };
  /** With `addr show`: the addresses. */
  addr_info?: Array<{ family: "inet" | "inet6"; local: string; prefixlen: number; scope?: string }>;
}

export const kindOf = (l: Pick<LinkRecord, "linkinfo">): string | undefined => l.linkinfo?.info_kind;

/**
 * IFF_PROMISC as netlink reports it (the user's setting, not a count raised by a packet socket), which is
 * what the reference's `Attrs().Promisc` reads.
 */
export const isPromisc = (l: LinkRecord): boolean => l.flags?.includes("PROMISC") ?? false;

/** The record named `name` in a read's answer (a list of links), if any. */
export function linkNamed(read: unknown[] | undefined, name: string): LinkRecord | undefined {
  return (read as LinkRecord[] | undefined)?.find((l) => l.ifname === name);
}

// The kernel's isspace (lib/ctype.c), which dev_valid_name applies to each byte: ASCII white space and
// 0xA0, so a UTF-8 name with that byte (such as "à", C3 A0) is refused as well.
const KERNEL_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]);

/** The kernel's dev_valid_name, so a bad name fails before anything is changed. */
export function validLinkName(name: string): boolean {
  const bytes = Buffer.from(name);
  if (bytes.length === 0 || bytes.length > 15) return false;
  if (name === "." || name === "..") return false;
  return !bytes.some((b) => b === 0x2f || b === 0x3a || b === 0 || KERNEL_SPACE.has(b));
}

/** The reference's errno for a name the kernel refuses (netlink returns ERANGE for a long name). */
export function linkNameError(name: string): string {
  return Buffer.byteLength(name) > 15 ? "numerical result out of range" : "invalid argument";
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

/** ip's words for a link that is not there. */
export const NO_SUCH_LINK = /does not exist|Cannot find device|No such device/;

/** A `link show` read whose answer is undefined when there is no such link (the batch runs -force). */
export const linkShowIfExists = (name: string): IpCommand => ({
  ...linkShow(name),
  mayFail: NO_SUCH_LINK,
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
  mayFail: NO_SUCH_LINK,
});

/** One link read on its own (a process): for rare paths, such as telling a race from a name clash. */
export async function readLink(name: string, opts: { netns?: string } = {}): Promise<LinkRecord | undefined> {
  const reads = await ipBatch([linkShowIfExists(name)], { ...opts, details: true });
  return reads[0]?.[0] as LinkRecord | undefined;
}

/** What changes on a link after the batch that made it: whether it is up, and its MAC. */
export interface LinkState {
  /** Lower case, as sysfs writes it: "up", "down", "lowerlayerdown"... */
  operstate: string;
  address: string;
}

/** Where the live state of this namespace's links is read from. */
export interface LinkStateSource {
  readonly from: "sysfs" | "ip";
  /** The state of each named link, undefined for one that does not exist. */
  read(names: string[]): Promise<Array<LinkState | undefined>>;
}

const sysfsSource: LinkStateSource = {
  from: "sysfs",
  read: async (names) =>
    names.map((name) => {
      const operstate = sysfsAttr(name, "operstate");
      const address = sysfsAttr(name, "address");
      return operstate === undefined || address === undefined ? undefined : { operstate, address };
    }),
};

const ipSource: LinkStateSource = {
  from: "ip",
  read: async (names) => {
    const reads = await ipBatch(names.map(linkShowIfExists));
    return reads.map((r) => {
      const l = r?.[0] as LinkRecord | undefined;
      return l
        ? { operstate: (l.operstate ?? "unknown").toLowerCase(), address: l.address ?? "" }
        : undefined;
    });
  },
};

/**
 * sysfs when `anchor` (a link ip just reported, best one with a random name such as a new host veth)
 * shows there as ip reported it, else ip (a process per read).
 */
export function linkStateSource(anchor: LinkRecord | undefined): LinkStateSource {
  return anchor && sysfsShows(anchor) ? sysfsSource : ipSource;
}

/**
 * Waits until a link is oper-up: a look at once, then at growing short intervals up to `budgetMs` in
 * total (the reference sleeps 0, 50, 500, 1000, 1000 ms between netlink reads). Returns the last state
 * seen ("notpresent" when the link is gone).
 */
export async function waitOperUp(src: LinkStateSource, name: string, budgetMs = 2550): Promise<string> {
  const start = Date.now();
  let delay = 1;
  for (;;) {
    const [state] = await src.read([name]);
    const operstate = state?.operstate ?? "notpresent";
    if (operstate === "up") return operstate;
    if (Date.now() - start >= budgetMs) return operstate;
    await new Promise((r) => setTimeout(r, delay));
    // A look through ip costs a process: wait longer between them.
    delay = Math.min(delay * 2, src.from === "ip" ? 100 : 50);
  }
}
