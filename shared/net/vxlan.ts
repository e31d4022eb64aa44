import { type IpCommand, q } from "./ip.js";
import { canonicalIpText } from "./ipaddr.js";
import type { LinkRecord } from "./link.js";
import { ipWord, isUnicastMac, macWord } from "./mac.js";

/**
 * VXLAN links: the `ip link add ... type vxlan` line for a batch, and the attributes read back from
 * `ip -j -d link show` (or `addr show`), to tell whether an existing device can be kept.
 */

export interface VxlanLink {
  name: string;
  vni: number;
  /** The local VTEP address (source of the encapsulated packets). */
  local: string;
  /** The underlay device the VTEP is bound to. */
  dev: string;
  /** UDP destination port (the kernel's default for an unset port is 8472, Linux's pre-IANA choice). */
  port: number;
  learning: boolean;
  mac?: string;
  mtu?: number;
}

/** The attributes of an existing vxlan link that decide whether it can be kept. */
export interface VxlanInfo {
  vni?: number;
  local?: string;
  dev?: string;
  port?: number;
  learning?: boolean;
  group?: string;
  l2miss: boolean;
  gbp: boolean;
}

interface VxlanInfoData {
  id?: number;
  local?: string;
  local6?: string;
  link?: string;
  port?: number;
  learning?: boolean;
  group?: string;
  group6?: string;
  remote?: string;
  remote6?: string;
  l2miss?: boolean;
  gbp?: boolean;
}

export function vxlanAdd(v: VxlanLink, what = `failed to create vxlan interface ${v.name}`): IpCommand {
  const parts = [`link add name ${q(v.name)}`];
  if (v.mac) {
    const mac = macWord(v.mac);
    if (!isUnicastMac(mac)) throw new Error(`a vxlan device needs a unicast MAC, not ${mac}`);
    parts.push(`address ${mac}`);
  }
  if (v.mtu) parts.push(`mtu ${v.mtu}`);
  parts.push(`type vxlan id ${v.vni} local ${ipWord(v.local)} dev ${q(v.dev)} dstport ${v.port}`);
  parts.push(v.learning ? "learning" : "nolearning");
  return { line: parts.join(" "), what };
}

/** The vxlan attributes of a link record, or undefined when it is not a vxlan link. */
export function vxlanInfo(l: LinkRecord): VxlanInfo | undefined {
  if (l.linkinfo?.info_kind !== "vxlan") return undefined;
  const d = (l.linkinfo.info_data ?? {}) as VxlanInfoData;
  const local = d.local ?? d.local6;
  const group = d.group ?? d.group6 ?? d.remote ?? d.remote6;
  const info: VxlanInfo = { l2miss: d.l2miss === true, gbp: d.gbp === true };
  if (d.id !== undefined) info.vni = d.id;
  if (local !== undefined) info.local = canonicalIpText(local);
  if (d.link !== undefined) info.dev = d.link;
  if (d.port !== undefined) info.port = d.port;
  if (d.learning !== undefined) info.learning = d.learning;
  if (group !== undefined) info.group = group;
  return info;
}

/**
 * Why an existing link cannot serve as `want`, in flanneld's words (vxlanLinksIncompat), or undefined
 * when it can. Stricter than flanneld where its leniency breaks the overlay: an unset local, device or
 * port on either side does not pass (flanneld skips those), because peers send to the port and address
 * they were told. MAC and MTU are not reasons: they are set in place.
 */
export function vxlanIncompatibility(want: VxlanLink, have: LinkRecord): string | undefined {
  const kind = have.linkinfo?.info_kind ?? "none";
  if (kind !== "vxlan") return `link type: ${kind} vs vxlan`;
  const h = vxlanInfo(have)!;
  const text = (v: unknown) => (v === undefined ? "none" : String(v));
  if (h.vni !== want.vni) return `vni: ${text(h.vni)} vs ${want.vni}`;
  if (h.dev !== want.dev) return `vtep (external) interface: ${text(h.dev)} vs ${want.dev}`;
  if (h.local !== canonicalIpText(want.local)) return `vtep (external) IP: ${text(h.local)} vs ${want.local}`;
  if (h.group !== undefined) return `group address: ${h.group} vs none`;
  if (h.l2miss) return "l2miss: true vs false";
  if (h.port !== want.port) return `port: ${text(h.port)} vs ${want.port}`;
  if ((h.learning ?? true) !== want.learning) return `learning: ${text(h.learning)} vs ${want.learning}`;
  if (h.gbp) return "gbp: true vs false";
  return undefined;
}
