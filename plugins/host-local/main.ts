import type { Plugin } from "../../shared/cni/plugin.js";

/** host-local: answers VERSION; its verbs arrive with issue #3. */
export const plugin: Plugin = {
  name: "host-local",
};
