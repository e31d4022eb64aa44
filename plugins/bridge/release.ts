import type { Logger } from "../../shared/log.js";
import { removePodVethOfBridge } from "../../shared/net/veth.js";
import type { BridgeSettings } from "./config.js";
import type { PodRef } from "./host.js";

/**
 * DEL's interface teardown. The reference deletes whatever CNI_IFNAME is in the namespace; but after a
 * node reboot /proc/<pid>/ns/net can name another process's namespace (complaint 6.7), so weft deletes
 * the interface only when it is a veth whose peer is a port of this network's bridge: ip reads the
 * bridge's ports on the host while ip in the pod reads its interface and deletes it once both agree
 * (shared/net/veth.ts); deleting one end of a veth removes both. A missing interface is success.
 */
export async function releasePodLink(n: BridgeSettings, pod: PodRef, log: Logger): Promise<void> {
  const outcome = await removePodVethOfBridge(pod.netns, pod.ifname, n.brName);
  if (outcome === "not-veth" || outcome === "foreign") {
    log.warn("leaving the pod interface alone: it is not a veth attached to this bridge", {
      ifname: pod.ifname,
      bridge: n.brName,
      found: outcome,
    });
  }
}
