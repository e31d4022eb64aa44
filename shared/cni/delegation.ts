import { createLogger } from "../log.js";
import { type Caller, processCaller, type Verb } from "./env.js";
import { CniError, ErrorCode } from "./errors.js";

/**
 * Delegation loops. A delegate or IPAM `type` naming a plugin already running in this call (bridge with
 * `"ipam":{"type":"bridge"}`, flannel delegating to flannel) makes each plugin call the next forever,
 * in-process or one process after another, until the runtime kills the call. libcni sets nothing that
 * would stop it, so weft carries the chain of plugin types itself: in CmdArgs.delegation in-process, in
 * WEFT_DELEGATION to executed delegates (and through foreign plugins between two weft plugins, which
 * pass their environment on, as libcni's invoke does). A type that comes back, or a chain longer than
 * any real one (multus -> flannel -> bridge -> host-local), ends the call:
 * - ADD, CHECK, STATUS: a config error (7) naming the chain, before the repeated plugin starts;
 * - DEL, GC: success without running it. An ADD through the same loop failed before the repeated
 *   plugin did anything, so there is nothing for it to remove, and a teardown that failed here would
 *   fail on every retry.
 */
export const MAX_DELEGATION_DEPTH = 8;

/**
 * The chain of a plugin started as a process, from WEFT_DELEGATION (which a weft caller ends with the
 * type it ran, `name`) and its own name: the name is appended when the caller was a runtime (no chain)
 * or a foreign plugin, which passes the chain on without adding itself.
 */
export function chainOnStart(fromEnv: readonly string[] | undefined, name: string): string[] {
  const c = [...(fromEnv ?? [])];
  if (c.at(-1) !== name) c.push(name);
  return c;
}

/** The loop (or excess depth) in `chain`, whose last element is the plugin about to run; undefined if none. */
export function delegationLoop(chain: readonly string[]): CniError | undefined {
  const type = chain.at(-1);
  const looped = type !== undefined && chain.slice(0, -1).includes(type);
  if (!looped && chain.length <= MAX_DELEGATION_DEPTH) return undefined;
  return new CniError(
    ErrorCode.InvalidNetworkConfig,
    looped
      ? `delegation loop: ${chain.join(" -> ")}`
      : `delegation too deep: ${chain.join(" -> ")} (more than ${MAX_DELEGATION_DEPTH} plugins)`,
    `a delegate or IPAM "type" names a plugin that is already running in this call`,
  );
}

/**
 * Whether `verb` may go on into the plugin at the end of `chain`: true when there is no loop; false
 * for a DEL or GC through a loop (nothing to do, see above); a CniError thrown otherwise.
 */
export function mayEnter(verb: Verb, chain: readonly string[], caller: Caller = processCaller()): boolean {
  const loop = delegationLoop(chain);
  if (!loop) return true;
  if (verb !== "DEL" && verb !== "GC") throw loop;
  createLogger(chain.at(-2) ?? chain[0] ?? "weft", caller.env, caller.stderr).warn(
    `${verb} skips a plugin it already runs`,
    {
      loop: loop.msg,
    },
  );
  return false;
}
