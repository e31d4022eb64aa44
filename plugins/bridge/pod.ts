import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { Result } from "../../shared/cni/types.js";
import { addrShow, addrsOf } from "../../shared/net/addr.js";
import { configureIface } from "../../shared/net/ifconfig.js";
import { type IpCommand, type IpReads, ipBatch } from "../../shared/net/ip.js";
import { familyOfText } from "../../shared/net/ipaddr.js";
import { type LinkRecord, linkSetUp, linkShow } from "../../shared/net/link.js";
import { ifaceKey, type SysctlWrite } from "../../shared/net/sysctl.js";
import type { BridgeSettings } from "./config.js";
import type { PodPlan, PodRef } from "./host.js";

/** The pod side: what ADD configures in the pod's namespace. */

/**
 * What ADD runs inside the pod: the interface sysctls, then ConfigureIface (addresses, up, routes) for L3,
 * or just the link up for L2, and finally a read of the interface for its MAC. `result` is the IPAM result
 * after calcGateways (ips point at interface 2).
 */
export function podPlan(n: BridgeSettings, pod: PodRef, result: Result): PodPlan {
  const sysctls: SysctlWrite[] = [];
  let cmds: IpCommand[] = [];
  if (n.isLayer3) {
    if (n.enableDad) {
      sysctls.push({ key: ifaceKey(6, pod.ifname, "enhanced_dad"), value: "1" });
      sysctls.push({ key: ifaceKey(6, pod.ifname, "accept_dad"), value: "1" });
    } else {
      sysctls.push({ key: ifaceKey(6, pod.ifname, "accept_dad"), value: "0" });
    }
    sysctls.push({ key: ifaceKey(4, pod.ifname, "arp_notify"), value: "1" });
    // ConfigureIface checks that each IP's interface index names CNI_IFNAME.
    const layout: Result = {
      ...result,
      interfaces: [{ name: n.brName }, { name: "" }, { name: pod.ifname }],
    };
    let cfg: ReturnType<typeof configureIface>;
    try {
      cfg = configureIface(pod.ifname, layout);
    } catch (err) {
      throw new CniError(ErrorCode.Internal, (err as Error).message, "", { cause: err });
    }
    sysctls.push(...cfg.sysctls);
    cmds = cfg.cmds;
  } else if (!n.disableContainerInterface) {
    cmds.push(linkSetUp(pod.ifname, `failed to set ${JSON.stringify(pod.ifname)} up`));
  }
  cmds.push(linkShow(pod.ifname, `failed to look up ${JSON.stringify(pod.ifname)}`));
  return { cmds, sysctls };
}

/** After the pod plan ran: the interface's MAC, once IPv6 DAD (if enabled) has settled. */
export async function finishPod(
  n: BridgeSettings,
  pod: PodRef,
  result: Result,
  reads: IpReads,
): Promise<string> {
  const link = reads[0]?.[0] as LinkRecord | undefined;
  if (n.isLayer3 && n.enableDad && (result.ips ?? []).some((ip) => familyOfText(ip.address) === 6)) {
    await settleAddresses(pod);
  }
  return link?.address ?? "";
}

/**
 * SettleAddresses: with DAD on, wait (up to 5 s, every 50 ms) until no address on the interface is
 * tentative; a DAD failure is an error.
 */
async function settleAddresses(pod: PodRef): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const reads = await ipBatch([addrShow(pod.ifname)], { netns: pod.netns });
    const addrs = addrsOf(reads[0]);
    const failed = addrs.find((a) => a.dadfailed);
    if (failed) {
      throw new CniError(ErrorCode.Internal, `failed to settle addresses: ${failed.local} has DADFAILED set`);
    }
    if (!addrs.some((a) => a.tentative)) return;
    if (Date.now() >= deadline) {
      throw new CniError(ErrorCode.Internal, `failed to settle addresses: still tentative after 5s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
