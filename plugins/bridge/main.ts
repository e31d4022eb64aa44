import type { Plugin } from "../../shared/cni/plugin.js";

/** bridge: answers VERSION; its verbs arrive with issue #4. */
export const plugin: Plugin = {
  name: "bridge",
};
