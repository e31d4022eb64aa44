import type { Plugin } from "../../shared/cni/plugin.js";

/** portmap: answers VERSION; its verbs arrive with issue #5. */
export const plugin: Plugin = {
  name: "portmap",
};
