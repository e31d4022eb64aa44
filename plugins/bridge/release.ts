import type { Logger } from "../../shared/log.js";
import { bridgePortIndexes } from "../../shared/net/bridge.js";
import type { BridgeSettings } from "./config.js";
import { type PodRef, removeHostVeth } from "./host.js";
import { isVeth, readPodLink } from "./pod.js";

/**
 * DEL's interface teardown. The reference deletes whatever CNI_IFNAME is in the namespace; but after a
 * node reboot /proc/<pid>/ns/net can name another process's namespace (complaint 6.7), so weft deletes
 * the interface only when it is a veth whose peer is a port of this network's bridge, and does so from
 * the host side (deleting one end of a veth removes both). A missing interface is success.
 */
export async function releasePodLink(n: BridgeSettings, pod: PodRef, log: Logger): Promise<void> {
  const link = await readPodLink(pod);
  if (!link) return;
  const hostPort =
    isVeth(link) && link.link_index !== undefined
      ? bridgePortIndexes(n.brName).get(link.link_index)
      : undefined;
  if (!hostPort) {
    log.warn("leaving the pod interface alone: it is not a veth attached to this bridge", {
      ifname: pod.ifname,
      kind: link.linkinfo?.info_kind,
      bridge: n.brName,
    });
    return;
  }
  await removeHostVeth(hostPort);
}
