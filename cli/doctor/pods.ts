import { readdirSync, readFileSync, statSync } from "node:fs";
import { ipBatch, q } from "../../shared/net/ip.js";
import { canonicalIpText } from "../../shared/net/ipaddr.js";
import { kindOf, type LinkRecord } from "../../shared/net/link.js";
import { run } from "../../shared/net/run.js";
import type { KernelView } from "./node.js";

/**
 * The pods of this node as the kernel shows them: every veth here whose peer sits in another network
 * namespace, with that namespace and the addresses the pod holds on the peer. A runtime reaches a pod's
 * namespace by a name (containerd, CRI-O and podman pin it under /run/netns, Docker under
 * /run/docker/netns: any nsfs mount); a namespace without one is kept alive only by a stray process or
 * file descriptor, after the runtime removed the pod, and no runtime will ever DEL it again.
 *
 * A namespace dies with its last reference and takes its veth ends with it (the kernel deletes both ends
 * of the pair), so a veth whose peer's namespace is "gone" is one whose namespace lost its name.
 */

export interface PodLink {
  /** The host-side veth. */
  veth: LinkRecord;
  /** How the pod's namespace is reached: a name in /run/netns, a mount point, or /proc/<pid>/ns/net. */
  netns?: string;
  /** Whether a runtime can still reach the namespace by name (named or mounted). */
  named: boolean;
  /** The pod's global addresses on the peer (canonical), or undefined when they could not be read. */
  addrs?: string[];
}

/** Mount points of nsfs files (bind-mounted namespaces) from /proc/self/mountinfo. */
export function nsfsMounts(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0 || line.slice(sep + 3).split(" ")[0] !== "nsfs") continue;
    const point = line.slice(0, sep).split(" ")[4];
    // mountinfo escapes space, tab, newline and backslash as octal.
    if (point)
      out.push(point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

const inode = (path: string): number | undefined => {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
};

/** The global addresses of link `ifindex` in an `ip -j addr show` answer, if that link is there. */
function addrsOf(read: unknown[] | undefined, ifindex: number): string[] | undefined {
  const link = (read as LinkRecord[] | undefined)?.find((l) => l.ifindex === ifindex);
  if (!link) return undefined;
  return (link.addr_info ?? [])
    .filter((a) => a.scope !== "link" && a.scope !== "host")
    .map((a) => canonicalIpText(a.local));
}

/**
 * Ways into the namespaces that have no name in /run/netns: other nsfs mounts (named) and the
 * namespaces of running processes (one pid each), excluding this namespace and the named ones.
 */
function otherNamespaces(named: string[]): Array<{ path: string; named: boolean }> {
  const seen = new Set<number>();
  const self = inode("/proc/self/ns/net");
  if (self !== undefined) seen.add(self);
  for (const n of named) {
    const i = inode(`/run/netns/${n}`) ?? inode(`/var/run/netns/${n}`);
    if (i !== undefined) seen.add(i);
  }
  const out: Array<{ path: string; named: boolean }> = [];
  let mounts: string[] = [];
  try {
    mounts = nsfsMounts(readFileSync("/proc/self/mountinfo", "utf8"));
  } catch {
    // no mountinfo: processes only
  }
  for (const m of mounts) {
    const i = inode(m);
    if (i === undefined || seen.has(i)) continue;
    seen.add(i);
    out.push({ path: m, named: true });
  }
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const path = `/proc/${pid}/ns/net`;
    const i = inode(path);
    if (i === undefined || seen.has(i)) continue;
    seen.add(i);
    out.push({ path, named: false });
  }
  return out;
}

/** The pods attached to this node by a veth, found from the kernel's links and namespaces. */
export async function readPods(kernel: KernelView): Promise<PodLink[]> {
  const veths = kernel.links.filter((l) => kindOf(l) === "veth" && l.link_netnsid !== undefined);
  const pods: PodLink[] = [];
  const byName = new Map<string, PodLink[]>();
  const unnamed: PodLink[] = [];
  for (const veth of veths) {
    const ns = kernel.netns.find((n) => n.id === veth.link_netnsid);
    const pod: PodLink = ns ? { veth, netns: ns.name, named: true } : { veth, named: false };
    pods.push(pod);
    if (ns) byName.set(ns.name, [...(byName.get(ns.name) ?? []), pod]);
    else unnamed.push(pod);
  }
  // One ip process for every named pod namespace: `netns exec <name> ip -j addr show` per line.
  const names = [...byName.keys()];
  if (names.length > 0) {
    const reads = await ipBatch(
      names.map((n) => ({
        line: `netns exec ${q(n)} ip -j addr show`,
        what: `read the addresses in ${n}`,
        read: true,
        mayFail: /./,
      })),
    ).catch(() => names.map(() => undefined));
    names.forEach((n, i) => {
      for (const pod of byName.get(n)!) {
        const a = addrsOf(reads[i], pod.veth.link_index ?? -1);
        if (a) pod.addrs = a;
      }
    });
  }
  if (unnamed.length > 0)
    await resolveUnnamed(
      unnamed,
      kernel.netns.map((n) => n.name),
    );
  return pods;
}

/**
 * Finds the namespaces of veth peers that have no name in /run/netns: a peer is the link whose ifindex
 * is the veth's peer index and whose own peer index is the veth (the pair, seen from both ends).
 */
async function resolveUnnamed(pods: PodLink[], named: string[]): Promise<void> {
  const candidates = otherNamespaces(named);
  if (candidates.length === 0) return;
  // One shell for all of them; each answers one JSON line (or "null" when it cannot be entered).
  const r = await run(
    "sh",
    [
      "-c",
      'for p; do nsenter --net="$p" ip -j addr show 2>/dev/null || echo null; done',
      "sh",
      ...candidates.map((c) => c.path),
    ],
    { allowFail: true },
  ).catch(() => undefined);
  const lines = (r?.stdout ?? "").split("\n").filter((l) => l.trim() !== "");
  candidates.forEach((c, i) => {
    let links: LinkRecord[] | undefined;
    try {
      links = JSON.parse(lines[i] ?? "null") as LinkRecord[] | undefined;
    } catch {
      links = undefined;
    }
    for (const pod of pods) {
      if (pod.netns) continue;
      const peer = links?.find(
        (l) =>
          l.ifindex === pod.veth.link_index &&
          l.link_index === pod.veth.ifindex &&
          l.link_netnsid !== undefined,
      );
      if (!peer) continue;
      pod.netns = c.path;
      pod.named = c.named;
      pod.addrs = addrsOf(links, peer.ifindex) ?? [];
    }
  });
}
