import type { Logger } from "../../shared/log.js";
import { deleteFlows } from "../../shared/net/conntrack.js";

/**
 * UDP has no connection teardown, so a conntrack entry created before a mapping changed keeps steering
 * a client's datagrams to the old destination (or past the DNAT) until it times out. The reference
 * flushes them after an ADD; weft also does after a DEL. Failures are only logged, as in the reference.
 */
export async function flushStaleUdpFlows(ports: number[], family: 4 | 6, log: Logger): Promise<void> {
  await Promise.all(
    [...new Set(ports)].map(async (port) => {
      try {
        await deleteFlows({ protocol: "udp", origDstPort: port, family });
      } catch (err) {
        log.warn("failed to delete stale UDP conntrack entries", {
          port,
          family,
          err: (err as Error).message,
        });
      }
    }),
  );
}
