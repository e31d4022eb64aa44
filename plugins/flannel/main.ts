import { validAttachments } from "../../shared/cni/attachments.js";
import { checkContainerIdLength, splitPath } from "../../shared/cni/env.js";
import { CniError, ErrorCode, toCniError, wrapError } from "../../shared/cni/errors.js";
import { findInPath, invokeDelegate, isRefusal, sameError } from "../../shared/cni/invoke.js";
import type { CallContext, Plugin } from "../../shared/cni/plugin.js";
import { formatResult, parsePrevResult, parseResult } from "../../shared/cni/results.js";
import type { JsonSchema } from "../../shared/cni/schemas.js";
import type { Result } from "../../shared/cni/types.js";
import { DEFAULT_SUBNET_FILE, readSubnetEnv, type SubnetEnv } from "../../shared/flannel/subnet-env.js";
import { buildDelegateConfig, delegateType, type FlannelNetConf, ipamType } from "./delegate.js";
import { goMarshal } from "./go-json.js";
import { withRouteGateways } from "./prev-result.js";
import {
  DEFAULT_DATA_DIR,
  listSavedContainerIds,
  MAX_CONTAINER_ID_BYTES,
  parseSavedConfig,
  readSavedConfig,
  removeSavedConfig,
  saveDelegateConfig,
} from "./saved-config.js";

/**
 * flannel: a meta plugin. It combines its config with the node's lease from flanneld's subnet.env into a
 * config for the real plugin (bridge by default), saves that config per container and delegates to it.
 * Drop-in for flannel-io/cni-plugin; see README.md for where it goes further.
 */

type Ctx = CallContext<FlannelNetConf>;

/**
 * flannel-io/cni-plugin's NetConf: its own keys fold as Go's decoder folds them (`"SubnetFile"` works),
 * while `ipam`, `delegate` and `runtimeConfig` are map[string]interface{}: their keys are kept exactly
 * and reach the saved delegate config byte for byte.
 */
const schema: JsonSchema = {
  type: "object",
  properties: {
    ipam: { type: "object" },
    subnetFile: { type: "string" },
    dataDir: { type: "string" },
    delegate: { type: "object" },
    runtimeConfig: { type: "object" },
  },
};

const subnetFile = (ctx: Ctx) => ctx.conf.subnetFile || DEFAULT_SUBNET_FILE;
const dataDir = (ctx: Ctx) => ctx.conf.dataDir || DEFAULT_DATA_DIR;

function loadSubnetEnv(ctx: Ctx): SubnetEnv {
  try {
    return readSubnetEnv(subnetFile(ctx));
  } catch (err) {
    throw new CniError(
      ErrorCode.Internal,
      `failed to load flannel 'subnet.env' file: ${(err as Error).message}. Check the flannel pod log for this node.`,
      "",
      { cause: err },
    );
  }
}

async function cmdAdd(ctx: Ctx): Promise<Result> {
  // The saved config is named by the container ID: one that cannot be a file name fails here, before
  // anything, instead of in the middle (the reference: "open ...: file name too long").
  checkContainerIdLength(
    ctx.args.containerId,
    MAX_CONTAINER_ID_BYTES,
    `a file name (flannel saves the delegate config as ${dataDir(ctx)}/<containerID>)`,
  );
  const env = loadSubnetEnv(ctx);
  const delegate = buildDelegateConfig(ctx.conf, env);
  const bytes = goMarshal(delegate);
  ctx.log.info("netconf sent to delegate plugin", { delegate: bytes.toString() });
  try {
    requirePlugins(ctx);
  } catch (err) {
    throw wrapError("failed to delegate add", err);
  }
  // Saved BEFORE the delegate runs, so a DEL can always find what an interrupted ADD may have set up;
  // on disk before the ADD answers.
  const saved = saveDelegateConfig(dataDir(ctx), ctx.args.containerId, bytes);
  saved.catch(() => undefined);
  try {
    const out = await invokeDelegate("ADD", delegate.type, bytes, ctx.args);
    await saved;
    return parseResult(out, ctx.conf.cniVersion);
  } catch (err) {
    await saved.catch(() => undefined);
    await undoFailedAdd(ctx, delegate.type, bytes, toCniError(err));
    throw wrapError("failed to delegate add", err);
  }
}

/**
 * The delegate and its IPAM plugin must be installed before anything is saved or started: a missing
 * plugin (the most common flannel install fault, section 6.3) then fails with the reference's own
 * "failed to find plugin" text and leaves nothing behind, not even a saved config that no DEL could
 * replay until the plugin appears.
 */
function requirePlugins(ctx: Ctx): void {
  const paths = splitPath(ctx.args.path);
  findInPath(delegateType(ctx.conf), paths);
  findInPath(ipamType(ctx.conf), paths);
}

/**
 * The reference leaves the saved file behind when the delegate's ADD fails (containernetworking/plugins
 * #426), and a bridge that failed half-way may have left a veth and a reservation. Running the delegate's
 * DEL with the same config removes whatever it did set up; only when that succeeded is the saved file
 * removed. If the DEL fails too, it depends on how:
 * - the same error as the ADD, or a refusal (see isRefusal): the delegate turned the call down before
 *   looking at any state (a key of the wrong type, a bad CNI_ARGS, a version it does not speak), so it
 *   set nothing up, and every DEL replaying this file would fail the same way forever (the pod stuck
 *   Terminating, flannel-io/flannel#1662): the file goes;
 * - anything else (a lock, a busy netns, a plugin being replaced): the file stays, the only record of
 *   what to tear down, and the runtime's DEL for the failed sandbox (or GC) replays it.
 */
async function undoFailedAdd(ctx: Ctx, type: string, bytes: Buffer, addErr: CniError): Promise<void> {
  try {
    await invokeDelegate("DEL", type, bytes, ctx.args);
  } catch (err) {
    const delErr = toCniError(err);
    if (!sameError(delErr, addErr) && !isRefusal(delErr)) {
      ctx.log.warn("delegate DEL after the failed ADD failed; keeping the saved config for the next DEL", {
        error: delErr.message,
      });
      return;
    }
    ctx.log.warn(
      "the delegate refuses this config for DEL as for ADD; nothing to replay, saved config removed",
      {
        error: delErr.message,
      },
    );
  }
  removeSavedConfig(dataDir(ctx), ctx.args.containerId);
}

async function cmdDel(ctx: Ctx): Promise<void> {
  const dir = dataDir(ctx);
  let bytes: Buffer | undefined;
  try {
    bytes = readSavedConfig(dir, ctx.args.containerId);
  } catch (err) {
    throw new CniError(
      ErrorCode.IOFailure,
      `failed to read the saved delegate config: ${(err as Error).message}`,
      "",
      { cause: err },
    );
  }
  // Per spec, DEL of something already gone succeeds.
  if (!bytes) return;
  const saved = parseSavedConfig(bytes);
  if (saved) {
    // Replayed byte for byte, as the reference does: the delegate tears down exactly what it set up.
    // Removed only after the delegate's DEL succeeded; the reference removes it even when the DEL
    // failed, so the runtime's retry found nothing and the address leaked for good.
    const refusal = await delegateDel(ctx, saved.doc.type, bytes);
    if (!refusal) return removeSavedConfig(dir, ctx.args.containerId);
    ctx.log.warn("the delegate refuses the saved config; trying one rebuilt from subnet.env", {
      error: refusal.message,
    });
  }
  const rebuilt = rebuildForDel(ctx, saved ? "refused" : "unreadable");
  if (!rebuilt) {
    // Nothing left that the delegate would take. A refused file goes (no retry can use it); an
    // unreadable one stays for GC, as the reference keeps it.
    if (saved) removeSavedConfig(dir, ctx.args.containerId);
    return;
  }
  // The same bytes would only be refused again.
  const refusal =
    saved && rebuilt.bytes.equals(bytes) ? true : await delegateDel(ctx, rebuilt.type, rebuilt.bytes);
  if (refusal instanceof CniError) {
    ctx.log.warn("the delegate refuses the rebuilt config too; saved config removed", {
      error: refusal.message,
    });
  }
  removeSavedConfig(dir, ctx.args.containerId);
}

/**
 * The delegate's DEL: undefined when it succeeded, the error when the delegate refused the call as such
 * (a retry with this config cannot succeed); any other failure is thrown, and the saved file stays for
 * the runtime's retry.
 */
async function delegateDel(ctx: Ctx, type: string, bytes: Buffer): Promise<CniError | undefined> {
  try {
    await invokeDelegate("DEL", type, bytes, ctx.args);
    return undefined;
  } catch (err) {
    const e = toCniError(err);
    if (isRefusal(e)) return e;
    throw err;
  }
}

/**
 * A saved file that does not parse (truncated by a crash of an old writer) or that the delegate refuses
 * (saved by a newer plugin set, or by a reference ADD that failed on it): the reference logs and returns
 * success without calling the delegate (or fails every retry), leaking the address. A config rebuilt from
 * today's flannel config and subnet.env still lets the delegate release it. Without one, DEL succeeds as
 * the reference does.
 */
function rebuildForDel(ctx: Ctx, why: "unreadable" | "refused"): { type: string; bytes: Buffer } | undefined {
  try {
    const delegate = buildDelegateConfig(ctx.conf, readSubnetEnv(subnetFile(ctx)));
    ctx.log.warn(`saved delegate config is ${why}; using one rebuilt from subnet.env for DEL`);
    return { type: delegate.type, bytes: goMarshal(delegate) };
  } catch (err) {
    ctx.log.warn(`saved delegate config is ${why} and no config can be rebuilt; DEL skips the delegate`, {
      error: (err as Error).message,
    });
    return undefined;
  }
}

/** Beyond the reference (whose CHECK does nothing): the delegate checks its interfaces and addresses. */
async function cmdCheck(ctx: Ctx): Promise<void> {
  const bytes = readSavedConfig(dataDir(ctx), ctx.args.containerId);
  const saved = bytes && parseSavedConfig(bytes);
  if (!saved) {
    throw new CniError(
      ErrorCode.UnknownContainer,
      `no usable saved delegate config for container ${ctx.args.containerId} in ${dataDir(ctx)}`,
    );
  }
  checkSubnetUnchanged(ctx, saved.doc);
  const doc: Record<string, unknown> = { ...saved.doc };
  const prev = parsePrevResult(ctx.conf);
  if (prev) doc.prevResult = formatResult(withRouteGateways(prev), ctx.conf.cniVersion || prev.cniVersion);
  if (ctx.conf.cniVersion) doc.cniVersion = ctx.conf.cniVersion;
  await invokeDelegate("CHECK", saved.doc.type, goMarshal(doc), ctx.args);
}

/** A pod keeps the subnet it was added with; if flanneld's lease moved since, the pod is unreachable. */
function checkSubnetUnchanged(ctx: Ctx, saved: Record<string, unknown>): void {
  let env: SubnetEnv;
  try {
    env = readSubnetEnv(subnetFile(ctx));
  } catch (err) {
    ctx.log.warn("CHECK cannot compare the pod's subnet with subnet.env", { error: (err as Error).message });
    return;
  }
  const ranges = (saved.ipam as { ranges?: Array<Array<{ subnet?: string }>> } | undefined)?.ranges ?? [];
  const was = ranges.map((set) => set[0]?.subnet).filter(Boolean);
  const now = [env.subnet, env.ipv6Subnet].filter(Boolean);
  if (was.join(",") !== now.join(",")) {
    throw new CniError(
      ErrorCode.Internal,
      `the node's flannel subnet changed since this pod was added (pod: ${was.join(",")}, subnet.env: ${now.join(",")}); recreate the pod`,
    );
  }
}

/**
 * Beyond the reference (no GC): forwards GC to the delegate so it releases the addresses and rules of
 * this network's containers that are not valid any more, then removes their saved configs. Removed only
 * after the delegate's GC succeeded, as DEL does: a saved config is the only record a later DEL can
 * replay. A GC without either attachments key says nothing about which pods live, so nothing is removed
 * and the delegate is not asked (a delegate reading "no list" as "none valid" would drop every pod's state).
 */
async function cmdGc(ctx: Ctx): Promise<void> {
  const dir = dataDir(ctx);
  const attachments = validAttachments(ctx.conf);
  if (attachments === undefined) {
    ctx.log.warn(
      "GC without cni.dev/valid-attachments or cni.dev/attachments: nothing removed, delegate not called",
    );
    return;
  }
  const valid = new Set(attachments.map((a) => a.containerID));
  let sample: Record<string, unknown> | undefined;
  const stale: string[] = [];
  // The delegate configs stale attachments were ADDed with: their IPAM may keep its state elsewhere than
  // today's config says (an edited ipam.dataDir), and once the saved file is gone nothing could release it.
  const staleConfigs = new Map<string, Record<string, unknown>>();
  for (const cid of listSavedContainerIds(dir)) {
    const bytes = readSavedConfig(dir, cid);
    const saved = bytes && parseSavedConfig(bytes);
    // Another network may share the data dir: only this network's (or unreadable) files are ours to judge.
    if (saved && saved.doc.name !== ctx.conf.name) continue;
    if (saved) sample = saved.doc;
    if (!valid.has(cid)) {
      stale.push(cid);
      if (saved) staleConfigs.set(`${saved.doc.type}|${JSON.stringify(saved.doc.ipam ?? null)}`, saved.doc);
    }
  }
  const delegate = gcDelegateConfig(ctx, sample);
  if (delegate) {
    await invokeDelegate("GC", delegate.type, goMarshal(delegate), ctx.args);
    staleConfigs.delete(`${delegate.type}|${JSON.stringify(delegate.ipam ?? null)}`);
  }
  // The same GC through each other config a stale attachment was ADDed with (its own IPAM state).
  for (const saved of staleConfigs.values()) {
    if (typeof saved.type !== "string") continue;
    const d = withGcFields(ctx, { ...saved });
    try {
      await invokeDelegate("GC", d.type, goMarshal(d), ctx.args);
    } catch (err) {
      // Best effort beyond the reference: the GC of today's config has run; say what could not be freed.
      ctx.log.warn("GC through a stale attachment's saved delegate config failed", {
        error: (err as Error).message,
      });
    }
  }
  for (const cid of stale) {
    ctx.log.info("GC removes the saved config of a stale attachment", { container: cid });
    removeSavedConfig(dir, cid);
  }
}

/** The delegate config for GC: built from subnet.env, else any saved config of this network. */
function gcDelegateConfig(
  ctx: Ctx,
  sample: Record<string, unknown> | undefined,
): (Record<string, unknown> & { type: string }) | undefined {
  let d: Record<string, unknown>;
  try {
    d = buildDelegateConfig(ctx.conf, readSubnetEnv(subnetFile(ctx)));
  } catch (err) {
    if (!sample) {
      ctx.log.warn("GC cannot build a delegate config; the delegate's GC is skipped", {
        error: (err as Error).message,
      });
      return undefined;
    }
    d = { ...sample };
  }
  return withGcFields(ctx, d);
}

/** A delegate config made a GC call's: its attachments and version, no prevResult. */
function withGcFields(ctx: Ctx, d: Record<string, unknown>): Record<string, unknown> & { type: string } {
  for (const key of ["cni.dev/valid-attachments", "cni.dev/attachments"] as const) {
    if (ctx.conf[key] !== undefined) d[key] = ctx.conf[key];
  }
  d.cniVersion = ctx.conf.cniVersion;
  delete d.prevResult;
  return d as Record<string, unknown> & { type: string };
}

/**
 * Beyond the reference (whose STATUS says ready even without subnet.env): not available (50) until
 * flanneld has written a valid subnet.env and the delegate and IPAM plugins are installed.
 */
async function cmdStatus(ctx: Ctx): Promise<void> {
  try {
    readSubnetEnv(subnetFile(ctx));
  } catch (err) {
    throw new CniError(
      ErrorCode.PluginNotAvailable,
      `flannel subnet.env is not ready: ${(err as Error).message}. Check the flannel pod log for this node.`,
      "",
      { cause: err },
    );
  }
  const paths = splitPath(ctx.args.path);
  // The same plugins ADD requires (requirePlugins), named with their role.
  for (const [role, type] of [
    ["delegate", delegateType(ctx.conf)],
    ["IPAM", ipamType(ctx.conf)],
  ] as const) {
    try {
      findInPath(type, paths);
    } catch (err) {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        `${role} plugin ${JSON.stringify(type)} is not installed: not found in CNI_PATH [${paths.join(" ")}]`,
        "",
        { cause: err },
      );
    }
  }
}

export const plugin: Plugin<FlannelNetConf> = {
  name: "flannel",
  schema,
  configContext: "failed to load netconf",
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  status: cmdStatus,
};
