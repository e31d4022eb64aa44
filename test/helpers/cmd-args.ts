import type { CmdArgs, Verb } from "../../shared/cni/env.js";

/** The CmdArgs skel reads for `command` with `stdin` (a container "ctr1" on eth0, no netns), plus `over`. */
export function cmdArgs(command: Verb, stdin: object | string, over: Partial<CmdArgs> = {}): CmdArgs {
  return {
    command,
    containerId: "ctr1",
    netns: "",
    ifname: "eth0",
    args: "",
    path: "/opt/cni/bin",
    netnsOverride: "",
    stdin: Buffer.from(typeof stdin === "string" ? stdin : JSON.stringify(stdin)),
    ...over,
  };
}
