import { validAttachments } from "../../shared/cni/attachments.js";
import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { CallContext, Plugin } from "../../shared/cni/plugin.js";
import type { Result } from "../../shared/cni/types.js";
import { allocate, hasReservation, release, toIpConfig } from "../../shared/ipam/allocator.js";
import { exhaustedRangeSet } from "../../shared/ipam/capacity.js";
import { hostLocalSchema, loadIpamConfig } from "../../shared/ipam/config.js";
import { parseResolvConf } from "../../shared/ipam/dns.js";
import { gcReservations } from "../../shared/ipam/gc.js";

/** host-local: addresses from range sets, one file per address under `<dataDir>/<network>`. */

/**
 * CNI_ARGS only carry the addresses an ADD asks for (`IP=`): DEL and GC do not parse them, so an argument
 * the reference refuses cannot fail a teardown on every retry.
 */
function load({ conf, args }: CallContext) {
  const needsArgs = args.command === "ADD" || args.command === "CHECK";
  return loadIpamConfig(conf, needsArgs ? args.args : "");
}

async function cmdAdd(ctx: CallContext): Promise<Result> {
  const ipam = load(ctx);
  const result: Result = { cniVersion: ctx.conf.cniVersion };
  if (ipam.resolvConf) result.dns = parseResolvConf(ipam.resolvConf);
  const allocations = await allocate(ipam, ctx.args.containerId, ctx.args.ifname, { log: ctx.log });
  result.ips = allocations.map(toIpConfig);
  if (ipam.routes) result.routes = ipam.routes;
  ctx.log.info("allocated", { ips: result.ips.map((ip) => ip.address).join(",") });
  return result;
}

async function cmdDel(ctx: CallContext): Promise<void> {
  const ipam = load(ctx);
  const released = await release(ipam, ctx.args.containerId, ctx.args.ifname);
  ctx.log.info("released", { files: released.join(",") || "none" });
}

async function cmdCheck(ctx: CallContext): Promise<void> {
  const ipam = load(ctx);
  if (!(await hasReservation(ipam, ctx.args.containerId, ctx.args.ifname))) {
    throw new CniError(
      ErrorCode.Internal,
      `host-local: Failed to find address added by container ${ctx.args.containerId}`,
    );
  }
}

async function cmdGc(ctx: CallContext): Promise<void> {
  const ipam = load(ctx);
  const valid = validAttachments(ctx.conf);
  if (valid === undefined) ctx.log.warn("GC without cni.dev/valid-attachments: nothing released");
  const released = await gcReservations(ipam, valid);
  if (released.length > 0) ctx.log.info("gc released", { files: released.join(",") });
}

async function cmdStatus(ctx: CallContext): Promise<void> {
  const full = exhaustedRangeSet(load(ctx));
  if (full) {
    throw new CniError(
      ErrorCode.PluginNotAvailable,
      `no IP addresses available in range set: ${full.ranges}`,
      `range set ${full.index}: all ${full.capacity} addresses are reserved`,
    );
  }
}

export const plugin: Plugin = {
  name: "host-local",
  schema: hostLocalSchema,
  // LoadIPAMConfig's json.Unmarshal error reaches the runtime unwrapped.
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  status: cmdStatus,
};
