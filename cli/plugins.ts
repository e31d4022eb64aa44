import type { Plugin } from "../shared/cni/plugin.js";

/** The CNI plugins this executable carries, each loaded only when it is the one invoked. */
export const PLUGINS: Record<string, () => Promise<Plugin>> = {
  flannel: async () => (await import("../plugins/flannel/main.js")).plugin,
  bridge: async () => (await import("../plugins/bridge/main.js")).plugin,
  "host-local": async () => (await import("../plugins/host-local/main.js")).plugin,
  portmap: async () => (await import("../plugins/portmap/main.js")).plugin,
};

export const PROGRAMS = ["weft", "weftd"] as const;
