import { basename } from "node:path";
import { registerBuiltinPlugins } from "../shared/cni/invoke.js";
import type { Plugin } from "../shared/cni/plugin.js";
import { pluginMain } from "../shared/cni/skel.js";

/** The CNI plugins this executable carries, each loaded only when it is the one invoked. */
export const PLUGINS: Record<string, () => Promise<Plugin>> = {
  flannel: async () => (await import("../plugins/flannel/main.js")).plugin,
  bridge: async () => (await import("../plugins/bridge/main.js")).plugin,
  "host-local": async () => (await import("../plugins/host-local/main.js")).plugin,
  portmap: async () => (await import("../plugins/portmap/main.js")).plugin,
};

/** Runs the named plugin as this process; its delegates that are also built in run in-process too. */
export async function runBuiltinPlugin(load: () => Promise<Plugin>, stdin?: Buffer): Promise<never> {
  registerBuiltinPlugins(PLUGINS);
  return pluginMain(await load(), stdin);
}

/**
 * The name this executable was run as (WEFT_MULTICALL_NAME, else its file name), taken out of the
 * environment: delegates inherit it and must pick their own name, not ours.
 */
export function invokedName(): string {
  const name = process.env.WEFT_MULTICALL_NAME || basename(process.argv0);
  delete process.env.WEFT_MULTICALL_NAME;
  return name;
}
