import { readdirSync, readFileSync, statSync } from "node:fs";
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
  /**
   * No name found, but a mounted namespace could not be read: the pod may be there, so it is neither
   * live nor gone as far as doctor can tell.
   */
  unresolved?: boolean;
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

/**
 * The pod's global addresses: those of the veth's peer in an `ip -j addr show` answer of the pod's
 * namespace. The peer is the link whose index is the veth's peer index and whose own peer index is the
 * veth (the pair seen from both ends); undefined when no such link is there.
 */
function peerAddrs(read: unknown[] | undefined, veth: LinkRecord): string[] | undefined {
  const peer = (read as LinkRecord[] | undefined)?.find(
    (l) => l.ifindex === veth.link_index && l.link_index === veth.ifindex && l.link_netnsid !== undefined,
  );
  if (!peer) return undefined;
  return (peer.addr_info ?? [])
    .filter((x) => x.scope !== "link" && x.scope !== "host")
    .map((x) => canonicalIpText(x.local));
}

/**
 * `ip -j addr show` in each namespace (`ip -n NAME`, or `nsenter --net=PATH` for a path), in one shell.
 * Each answer follows a line naming its namespace, so a namespace that cannot be read leaves no gap for
 * another's answer to fill.
 */
async function addrsIn(spaces: string[], how: "name" | "path"): Promise<Map<string, unknown[]>> {
  const read = how === "name" ? 'ip -n "$n" -j addr show' : 'nsenter --net="$n" ip -j addr show';
  const script = `for n; do printf '@@ %s\\n' "$n"; ${read} 2>/dev/null; done`;
  const r = await run("sh", ["-c", script, "sh", ...spaces], { allowFail: true }).catch(() => undefined);
  const out = new Map<string, unknown[]>();
  let current: string | undefined;
  for (const line of (r?.stdout ?? "").split("\n")) {
    if (line.startsWith("@@ ")) {
      current = line.slice(3);
    } else if (current !== undefined && line.trim() !== "") {
      try {
        out.set(current, JSON.parse(line) as unknown[]);
      } catch {
        // a partial answer: that namespace stays unread
      }
      current = undefined;
    }
  }
  return out;
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
  const names = [...byName.keys()];
  if (names.length > 0) {
    const reads = await addrsIn(names, "name");
    for (const n of names) {
      for (const pod of byName.get(n)!) {
        const found = peerAddrs(reads.get(n), pod.veth);
        if (found) pod.addrs = found;
      }
    }
  }
  if (unnamed.length > 0)
    await resolveUnnamed(
      unnamed,
      kernel.netns.map((n) => n.name),
    );
  return pods;
}

/** Finds the namespaces of veth peers that have no name in /run/netns, among the other ways in. */
async function resolveUnnamed(pods: PodLink[], named: string[]): Promise<void> {
  const candidates = otherNamespaces(named);
  if (candidates.length === 0) return;
  const reads = await addrsIn(
    candidates.map((c) => c.path),
    "path",
  );
  for (const c of candidates) {
    for (const pod of pods) {
      if (pod.netns) continue;
      const found = peerAddrs(reads.get(c.path), pod.veth);
      if (!found) continue;
      pod.netns = c.path;
      pod.named = c.named;
      pod.addrs = found;
    }
  }
  // A process may end between the listing and the read; a mount stays, so an unread one leaves doubt.
  if (candidates.some((c) => c.named && !reads.has(c.path)))
    for (const pod of pods) if (!pod.netns) pod.unresolved = true;
}
