import { iptablesUsable } from "../../shared/net/iptables.js";
import { nftUsable } from "../../shared/net/nft.js";
import { checkBackendOptions, type PortMapConfig } from "./config.js";
import { iptablesMapper } from "./iptables-backend.js";
import { BackendUnusableError, type PortMapper } from "./mapper.js";
import { nftMapper } from "./nft-backend.js";
import type { Teardown } from "./record.js";

/**
 * The backend for a call. The reference defaults to iptables "unless it is not available (and nftables
 * is)", probing both tools on every call. Here the probe only runs when it can change the outcome: when
 * the config carries nft-only options (to choose between that error and nftables), or when the iptables
 * backend finds its tool unusable (then nftables is tried if it is usable and nothing in the config is
 * iptables-only).
 */
export async function selectBackend(conf: PortMapConfig): Promise<PortMapper> {
  if (conf.backend) return conf.backend === "nftables" ? nftMapper : iptablesMapper;
  if (conf.backendOptions.nftables.length > 0) {
    const backend = !(await iptablesUsable(4)) && (await nftUsable()) ? "nftables" : "iptables";
    checkBackendOptions(conf, backend);
    return backend === "nftables" ? nftMapper : iptablesMapper;
  }
  if (conf.backendOptions.iptables.length > 0) return iptablesMapper;
  return withNftFallback(iptablesMapper);
}

function withNftFallback(primary: PortMapper): PortMapper {
  const attempt =
    <A extends unknown[], R>(op: (m: PortMapper, ...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await op(primary, ...a);
      } catch (err) {
        if (!(err instanceof BackendUnusableError) || !(await nftUsable())) throw err;
        return op(nftMapper, ...a);
      }
    };
  return {
    name: primary.name,
    forwardPorts: attempt((m, conf: PortMapConfig, nets) => m.forwardPorts(conf, nets)),
    checkPorts: attempt((m, conf: PortMapConfig, nets) => m.checkPorts(conf, nets)),
    // Planned before the ADD, so by the backend meant to install; a DEL falling back to nftables finds
    // that backend's rules its own way (nft ignores an iptables teardown).
    teardownPlan: (conf, nets) => primary.teardownPlan(conf, nets),
    unforwardPorts: attempt((m, conf: PortMapConfig, recorded?: Teardown) =>
      m.unforwardPorts(conf, recorded),
    ),
    gc: attempt((m, conf: PortMapConfig, valid: Set<string>) => m.gc(conf, valid)),
  };
}
