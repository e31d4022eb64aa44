/**
 * The host programs weft starts, with what each is for: the README's node requirements, `weft install`'s
 * warnings and `weft doctor`'s check read this one list. weft has no native code: every kernel change goes
 * through these tools (shared/net/run.ts starts them).
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface HostProgram {
  name: string;
  /** Who needs it and for what, as printed in a warning. */
  use: string;
  /** Debian package that ships it (the README's install line). */
  pkg: string;
}

export const HOST_PROGRAMS: readonly HostProgram[] = [
  { name: "ip", use: "links, addresses, routes, neighbours (bridge, flannel, weftd)", pkg: "iproute2" },
  { name: "bridge", use: "hairpin mode and VXLAN fdb entries (bridge, weftd)", pkg: "iproute2" },
  { name: "nsenter", use: "entering a pod's network namespace (bridge)", pkg: "util-linux" },
  { name: "flock", use: "host-local's lock on its data dir, shared with the reference", pkg: "util-linux" },
  {
    name: "iptables",
    use: "single checks and the backend's version (bridge, portmap, weftd)",
    pkg: "iptables",
  },
  { name: "ip6tables", use: "the same for IPv6", pkg: "iptables" },
  { name: "iptables-restore", use: "ipMasq, portmap and weftd rules, one batch per change", pkg: "iptables" },
  { name: "iptables-save", use: "reading the IPv4 rules (portmap DEL/GC, weftd)", pkg: "iptables" },
  { name: "ip6tables-restore", use: "the IPv6 rules of a dual-stack node", pkg: "iptables" },
  { name: "ip6tables-save", use: "reading the IPv6 rules", pkg: "iptables" },
  { name: "nft", use: "portmap's nftables backend (backend: nftables)", pkg: "nftables" },
  { name: "conntrack", use: "dropping stale UDP conntrack entries after a portmap change", pkg: "conntrack" },
  { name: "sh", use: "running batches of kernel tools", pkg: "dash" },
];

/** The directory of PATH holding an executable `name`, or undefined. */
export function findProgram(
  name: string,
  path = process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The host programs missing from PATH. */
export function missingHostPrograms(path?: string): HostProgram[] {
  return HOST_PROGRAMS.filter((p) => findProgram(p.name, path) === undefined);
}
