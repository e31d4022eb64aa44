import type { Logger } from "../log.js";
import type { CmdArgs } from "./env.js";
import type { JsonSchema } from "./schemas.js";
import type { NetConf, Result } from "./types.js";

/** Everything one verb of one plugin gets: skel's CmdArgs, the decoded config and a logger. */
export interface CallContext<C extends NetConf = NetConf> {
  args: CmdArgs;
  conf: C;
  log: Logger;
}

/**
 * A CNI plugin as a set of verb handlers. ADD returns the result in the internal (1.x) layout and skel
 * prints it in the config's version; the other verbs return nothing or throw a CniError. A missing
 * GC/STATUS handler means success, as skel does for a nil func.
 */
export interface Plugin<C extends NetConf = NetConf> {
  name: string;
  /**
   * The reference plugin's config struct as a JSON schema (its own keys; types.NetConf's are embedded):
   * skel decodes the config into it as Go's encoding/json would (shared/cni/go-decode.ts), then
   * validates it, before any verb runs.
   */
  schema?: JsonSchema;
  /** How the reference wraps a config its json.Unmarshal refuses, e.g. "failed to load netconf". */
  configContext?: string;
  add?(ctx: CallContext<C>): Promise<Result>;
  del?(ctx: CallContext<C>): Promise<void>;
  check?(ctx: CallContext<C>): Promise<void>;
  gc?(ctx: CallContext<C>): Promise<void>;
  status?(ctx: CallContext<C>): Promise<void>;
}
