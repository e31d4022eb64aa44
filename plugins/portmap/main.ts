import { validAttachments } from "../../shared/cni/attachments.js";
import { CniError, ErrorCode, wrapError } from "../../shared/cni/errors.js";
import type { CallContext, Plugin } from "../../shared/cni/plugin.js";
import type { Result } from "../../shared/cni/types.js";
import { routableHostInterface } from "../../shared/net/route-lookup.js";
import { selectBackend } from "./backend.js";
import {
  type ContainerNet,
  type PortMapConfig,
  type PortMapNetConf,
  parseConfig,
  portMapSchema,
} from "./config.js";
import { enableRouteLocalnet } from "./localnet.js";
import {
  type AttachmentKey,
  readRecord,
  readRecordState,
  recordRules,
  removeRecord,
  removeStaleRecords,
  teardownAfter,
  writeRecord,
} from "./record.js";
import { flushStaleUdpFlows } from "./stale-flows.js";
import { backendProblem } from "./status.js";

/**
 * portmap: a chained plugin that forwards host ports to the container (runtimeConfig.portMappings),
 * with the reference's iptables rules (default) or its nftables layout ("backend": "nftables").
 */

type Ctx = CallContext<PortMapNetConf>;

function load({ args, conf }: Ctx, checkMappings: boolean, wrap: boolean): PortMapConfig {
  try {
    return parseConfig(conf, { containerId: args.containerId, ifname: args.ifname, checkMappings });
  } catch (err) {
    throw wrap ? wrapError("failed to parse config", err) : err;
  }
}

/** DEL and GC: only the network name, the container ID and the backend decide what they remove. */
function loadForTeardown({ args, conf, log }: Ctx): PortMapConfig {
  const onIgnored = (problem: string) =>
    log.warn("config problem ignored: teardown needs only the network name and container ID", { problem });
  return parseConfig(conf, {
    containerId: args.containerId,
    ifname: args.ifname,
    checkMappings: false,
    teardown: { onIgnored },
  });
}

const containerNets = (conf: PortMapConfig): ContainerNet[] =>
  [conf.contIPv4, conf.contIPv6].filter((n): n is ContainerNet => n !== undefined);

const udpPorts = (conf: PortMapConfig) =>
  conf.mappings.filter((pm) => pm.protocol === "udp").map((pm) => pm.hostPort);

/** 127.0.0.1:<hostPort> must cross into the interface routing to the pod (the reference's choice too). */
async function enableLocalnetRouting(hostIf: Promise<string | undefined>): Promise<void> {
  const ifname = await hostIf;
  if (!ifname) return;
  try {
    enableRouteLocalnet(ifname);
  } catch (err) {
    throw wrapError("unable to enable route_localnet", err);
  }
}

const attachment = ({ args, conf }: Ctx): AttachmentKey => ({
  network: conf.name,
  containerId: args.containerId,
  ifname: args.ifname,
});

/**
 * An ADD without mappings installs nothing: recorded (record.ts) so its DEL need not read the tables.
 * Not over a record of rules (a repeated ADD: the first one's rules are still there). Best effort: without
 * the record, DEL reads the tables as it always could.
 */
function recordNothingInstalled(ctx: Ctx): void {
  const key = attachment(ctx);
  try {
    if (readRecord(key) !== "rules") writeRecord(key, "none");
  } catch (err) {
    ctx.log.debug("no record of an ADD without mappings: its DEL reads the tables", {
      error: (err as Error).message,
    });
  }
}

/** Once nothing is installed for the attachment. A record left behind only makes a later DEL read. */
function forgetRecord(ctx: Ctx): void {
  try {
    removeRecord(attachment(ctx));
  } catch (err) {
    ctx.log.warn("could not remove the attachment's record", { error: (err as Error).message });
  }
}

async function cmdAdd(ctx: Ctx): Promise<Result> {
  const conf = load(ctx, true, true);
  if (!conf.prevResult)
    throw new CniError(ErrorCode.InvalidNetworkConfig, "must be called as chained plugin");
  if (conf.mappings.length === 0) {
    recordNothingInstalled(ctx);
    return conf.prevResult;
  }

  const nets = containerNets(conf);
  const mapper = await selectBackend(conf);
  const key = attachment(ctx);
  // What a DEL will need to remove this ADD's rules unread (and an earlier ADD's of another family).
  const teardown = teardownAfter(readRecordState(key), mapper.teardownPlan(conf, nets));
  // Before any rule exists (and after the last refusal of the config), so no record saying "none" can
  // outlive a rule and a refused ADD leaves no record.
  try {
    recordRules(key, teardown);
  } catch (err) {
    throw wrapError("unable to record the port mappings", err);
  }
  const localnetIf = conf.snat && conf.contIPv4 ? routableHostInterface(conf.contIPv4.ip) : undefined;
  try {
    // The families are separate transactions (iptables): one may have committed when the other failed.
    await mapper.forwardPorts(conf, nets);
    await Promise.all([
      ...nets.map((net) => flushStaleUdpFlows(udpPorts(conf), net.family, ctx.log)),
      localnetIf && enableLocalnetRouting(localnetIf),
    ]);
  } catch (err) {
    // A failed ADD leaves nothing of this container (the shared chains stay, as after any DEL).
    await mapper.unforwardPorts(conf, teardown).then(
      () => forgetRecord(ctx),
      (undoErr: Error) =>
        ctx.log.warn("could not remove the rules of the failed ADD", { error: undoErr.message }),
    );
    throw err;
  }
  return conf.prevResult;
}

async function cmdDel(ctx: Ctx): Promise<void> {
  // Unlike the reference, which returns early without portMappings and leaks the rules when the
  // runtime omits them on DEL: everything installed is found from the network name and container ID.
  const conf = loadForTeardown(ctx);
  const key = attachment(ctx);
  const record = readRecordState(key);
  // The usual pod, without hostPorts: its ADD recorded that it installed nothing, so nothing is read.
  // Any other record, or none (a reboot, the reference's ADD, an older weft), goes to the backend, which
  // applies the teardown a record of rules carries and reads the tables where it has none or it fails.
  if (conf.mappings.length === 0 && record?.installed === "none") {
    forgetRecord(ctx);
    return;
  }
  const mapper = await selectBackend(conf);
  const removed = await mapper.unforwardPorts(conf, record?.teardown);
  await Promise.all([flushStaleUdpFlows(removed[4], 4, ctx.log), flushStaleUdpFlows(removed[6], 6, ctx.log)]);
  forgetRecord(ctx);
}

async function cmdCheck(ctx: Ctx): Promise<void> {
  const conf = load(ctx, true, false);
  if (!conf.prevResult) throw new CniError(ErrorCode.InvalidNetworkConfig, "Required prevResult missing");
  if (conf.mappings.length === 0) return;
  const mapper = await selectBackend(conf);
  await mapper.checkPorts(conf, containerNets(conf));
}

async function cmdGc(ctx: Ctx): Promise<void> {
  const conf = loadForTeardown(ctx);
  const attachments = validAttachments(ctx.conf);
  if (attachments === undefined) {
    ctx.log.warn("GC without cni.dev/valid-attachments: nothing removed");
    return;
  }
  const valid = new Set(attachments.map((a) => a.containerID));
  const mapper = await selectBackend(conf);
  await mapper.gc(conf, valid);
  try {
    removeStaleRecords(conf.name, attachments);
  } catch (err) {
    ctx.log.warn("could not remove the records of attachments no longer valid", {
      error: (err as Error).message,
    });
  }
}

async function cmdStatus(ctx: Ctx): Promise<void> {
  const problem = await backendProblem(load(ctx, false, false));
  if (problem) throw new CniError(ErrorCode.PluginNotAvailable, problem);
}

export const plugin: Plugin<PortMapNetConf> = {
  name: "portmap",
  schema: portMapSchema,
  configContext: "failed to parse network configuration",
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  status: cmdStatus,
};
