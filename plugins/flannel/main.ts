import type { Plugin } from "../../shared/cni/plugin.js";

/** flannel: answers VERSION; its verbs arrive with issue #4. */
export const plugin: Plugin = {
  name: "flannel",
};
