import { readFileSync } from "node:fs";
import type { LinkRecord } from "./link.js";

/**
 * /sys/class/net as a source of link state, read without a process. sysfs shows the network namespace
 * of the process that mounted it: `ip netns exec` remounts /sys, but a caller that entered a namespace
 * with setns() (`nsenter --net=`, Go test harnesses, some runtimes) still sees the old one, where a link
 * of the same name may be another link or none. So /sys is trusted only after a proof: a link that ip
 * (netlink, always this namespace) just reported shows there with the same ifindex and peer.
 */

/** One attribute of a link, or undefined when sysfs has no such link (or file). */
export function sysfsAttr(name: string, file: string): string | undefined {
  // A name sysfs cannot hold as a directory entry ("", ".", "..", or with "/") has no entry to read.
  if (name === "" || name === "." || name === ".." || name.includes("/")) return undefined;
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether /sys/class/net shows the namespace `anchor` was read in. Prove it with a link whose name no
 * other namespace is likely to hold, such as a veth weft just created under a random name: its ifindex
 * and its peer's ifindex (iflink, the veth's `link_index`) must match too, so a namesake elsewhere fails.
 */
export function sysfsShows(anchor: LinkRecord): boolean {
  const ifindex = sysfsAttr(anchor.ifname, "ifindex");
  if (ifindex === undefined || Number(ifindex) !== anchor.ifindex) return false;
  // iflink is the link's own ifindex when it has no peer (or lower device).
  const iflink = Number(sysfsAttr(anchor.ifname, "iflink"));
  return iflink === (anchor.link_index ?? anchor.ifindex);
}
