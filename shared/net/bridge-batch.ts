import { type IpCommand, type IpReads, interpret } from "./ip.js";
import { run } from "./run.js";
import { type SysctlWrite, sysctlShellPrelude, trySysctl } from "./sysctl.js";

/**
 * iproute2's `bridge` in batch mode (`bridge -json -batch -`), for fdb entries: the same command data
 * (IpCommand) and the same outcome (reads, or the IpBatchError of the first failing command) as ipBatch.
 * A command with `mayFail` runs the batch with -force.
 */
export interface BridgeBatchOptions {
  netns?: string;
  /**
   * Sysctls written just before the batch: in the same process inside `netns`, else from this process
   * (/proc/sys/net shows the namespace of the process that opens it). Failures are ignored.
   */
  sysctls?: SysctlWrite[];
}

export async function bridgeBatch(cmds: IpCommand[], opts: BridgeBatchOptions = {}): Promise<IpReads> {
  const sysctls = opts.sysctls ?? [];
  if (!opts.netns) for (const s of sysctls) trySysctl(s.key, s.value);
  if (cmds.length === 0 && (!opts.netns || sysctls.length === 0)) return [];
  const force = cmds.some((c) => c.mayFail);
  const args = ["-json", ...(force ? ["-force"] : []), "-batch", "-"];
  const input = cmds.length > 0 ? `${cmds.map((c) => c.line).join("\n")}\n` : "";
  let result: Awaited<ReturnType<typeof run>>;
  if (opts.netns && sysctls.length > 0) {
    const pre = sysctlShellPrelude(sysctls);
    const tail = cmds.length > 0 ? `exec bridge ${args.join(" ")}` : "true";
    result = await run("sh", ["-c", `${pre.script}${tail}`, "sh", ...pre.args], {
      input,
      netns: opts.netns,
      allowFail: true,
    });
  } else {
    result = await run("bridge", args, {
      input,
      ...(opts.netns ? { netns: opts.netns } : {}),
      allowFail: true,
    });
  }
  return interpret(cmds, result, force);
}
