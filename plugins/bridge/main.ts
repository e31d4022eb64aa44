import { validAttachments } from "../../shared/cni/attachments.js";
import { CniError, ErrorCode, wrapError } from "../../shared/cni/errors.js";
import { invokeDelegate } from "../../shared/cni/invoke.js";
import type { CallContext, Plugin } from "../../shared/cni/plugin.js";
import { parseResult } from "../../shared/cni/results.js";
import type { Result } from "../../shared/cni/types.js";
import { linkStateSource, waitOperUp } from "../../shared/net/link.js";
import { checkNetnsPath, NetnsPathError, netnsGone } from "../../shared/net/netns.js";
import { ensureSysctl } from "../../shared/net/sysctl.js";
import { type BridgeNetConf, type BridgeSettings, bridgeSchema, loadNetConf } from "./config.js";
import { calcGateways } from "./gateways.js";
import { attachPod, type HostAttachment, preflightBridge, removeGateways, removeHostVeth } from "./host.js";
import { ipMasqBackendFor } from "./masq-backend.js";
import { finishPod, podPlan } from "./pod.js";
import { releasePodLink } from "./release.js";
import { Rollback } from "./rollback.js";

/**
 * bridge: pods on a Linux bridge through veth pairs, as containernetworking/plugins' bridge does (same
 * config keys, result layout, rule names and error texts), with two differences: a failed ADD undoes
 * everything it did, and DEL cleans up even when the pod's namespace is gone.
 */

type Ctx = CallContext<BridgeNetConf>;

// Loaded only by the verbs and options that use them: every module initialised costs each process start.
const ipmasq = () => import("../../shared/net/ipmasq.js");
const ipmasqNft = () => import("../../shared/net/ipmasq-nft.js");
const spoofchk = () => import("../../shared/net/spoofchk.js");

async function cmdAdd(ctx: Ctx): Promise<Result> {
  const { args, log } = ctx;
  const n = loadNetConf(ctx.conf, args.args);
  preflightBridge(n, args);
  openNetns(args.netns);

  const undo = new Rollback();
  // Date.now, not performance.now: the `performance` global loads perf_hooks (~2 ms) on first use.
  const t0 = Date.now();
  const step = (what: string) => log.debug(what, { ms: Date.now() - t0 });
  try {
    const result: Result = { cniVersion: n.cniVersion, interfaces: [], ips: [], routes: [] };
    let gateways: string[] = [];
    if (n.isLayer3) {
      const ipam = await ipamAdd(ctx, n);
      undo.add("release the IPAM reservation", () => ipamDel(ctx, n));
      result.ips = ipam.ips ?? [];
      result.routes = ipam.routes ?? [];
      if (ipam.dns) result.dns = ipam.dns;
      if (result.ips.length === 0)
        throw new CniError(ErrorCode.Internal, "IPAM plugin returned missing IP config");
      gateways = calcGateways(result, n).flatMap((g) => g.gws);
      step("ipam done");
    }

    const host: HostAttachment = { addedGateways: [] };
    undo.add("remove the veth pair", () => (host.hostVeth ? removeHostVeth(host.hostVeth) : undefined));
    undo.add("remove the gateway addresses", () => removeGateways(n.brName, host.addedGateways));
    const { hostVeth, hostLink, podReads } = await attachPod(
      n,
      args,
      gateways,
      podPlan(n, args, result),
      log,
      host,
    );
    const podMac = await finishPod(n, args, result, podReads);
    result.interfaces = [
      { name: n.brName },
      { name: hostVeth },
      { name: args.ifname, mac: podMac, sandbox: args.netns },
    ];
    step("host and pod configured");

    if (n.isGW) enableForwarding(gateways);
    if (n.macSpoofChk) {
      const { setupSpoofCheck, spoofRefId, teardownSpoofCheck } = await spoofchk();
      const refId = spoofRefId(args.containerId, args.ifname);
      undo.add("remove the spoof check", () => teardownSpoofCheck(refId));
      await setupSpoofCheck(hostVeth, podMac, refId);
    }
    if (n.isLayer3 && n.ipMasq) {
      const addrs = (result.ips ?? []).map((ip) => ip.address);
      if ((await ipMasqBackendFor(n.ipMasqBackend)) === "nftables") {
        const { setupIpMasqNft, teardownIpMasqNft } = await ipmasqNft();
        undo.add("remove the masquerade rules", () =>
          teardownIpMasqNft(n.name, args.ifname, args.containerId),
        );
        await setupIpMasqNft(addrs, n.name, args.ifname, args.containerId);
      } else {
        const { setupIpMasq, teardownIpMasq } = await ipmasq();
        undo.add("remove the masquerade rules", () => teardownIpMasq(n.name, args.containerId));
        await setupIpMasq(addrs, n.name, args.containerId);
      }
    }

    step("rules done");
    // /sys only when it shows the host veth as ip reported it (else it is another namespace's).
    const links = linkStateSource(hostLink);
    if (!n.disableContainerInterface) {
      const state = await waitOperUp(links, hostVeth);
      step(`port up (read from ${links.from})`);
      if (state !== "up") throw new CniError(ErrorCode.Internal, `bridge port in error state: ${state}`);
    }
    // Read the MACs last: the host end's may change on the way up, the bridge's with its first port.
    const [br, veth] = await links.read([n.brName, hostVeth]);
    result.interfaces[0]!.mac = br?.address ?? "";
    result.interfaces[1]!.mac = veth?.address ?? "";
    if (dnsConfSet(ctx.conf.dns)) result.dns = ctx.conf.dns;
    return result;
  } catch (err) {
    await undo.run(log);
    throw err;
  }
}

async function cmdDel(ctx: Ctx): Promise<void> {
  const { args, log } = ctx;
  // CNI_ARGS only carry the ADD's MAC: a DEL does not parse them, so arguments the reference refuses
  // ("unknown args") cannot fail the teardown on every retry.
  const n = loadNetConf(ctx.conf, "");
  const errors: unknown[] = [];
  // The pod's interface and the reservation at once, each whatever happens to the other (complaint
  // 6.1): the kernel takes ~20 ms to delete a veth (it waits for an RCU grace period), time enough to
  // release the reservation (measured: flannel DEL served by weftd 37 -> 31 ms). The reference releases
  // first and deletes the link after, so an address handed out again can meet the old link on its way
  // out there as well.
  const outcomes = await Promise.allSettled([
    args.netns !== "" && !netnsGone(args.netns) ? releasePodLink(n, args, log) : undefined,
    n.isLayer3 ? ipamDel(ctx, n) : undefined,
  ]);
  for (const o of outcomes) if (o.status === "rejected") errors.push(o.reason);
  if (n.macSpoofChk) {
    const { spoofRefId, teardownSpoofCheck } = await spoofchk();
    await teardownSpoofCheck(spoofRefId(args.containerId, args.ifname)).catch((err: Error) =>
      log.warn(err.message),
    );
  }
  // By chain name (name + container ID): works without the pod's namespace or addresses.
  if (n.isLayer3 && n.ipMasq) {
    try {
      // Both backends, as the reference's TeardownIPMasqForNetworks: the config may have switched.
      await (await ipmasq()).teardownIpMasq(n.name, args.containerId);
      await (await ipmasqNft()).teardownIpMasqNft(n.name, args.ifname, args.containerId);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

async function cmdCheck(ctx: Ctx): Promise<void> {
  const { args } = ctx;
  const n = loadNetConf(ctx.conf, args.args);
  openNetns(args.netns);
  if (n.isLayer3) await invokeDelegate("CHECK", n.ipamType, args.stdin, args);
  if (!ctx.conf.prevResult) throw new CniError(ErrorCode.Internal, "Required prevResult missing");
  const prev = parseResult(ctx.conf.prevResult, n.cniVersion);
  const { checkPod } = await import("./check.js");
  await checkPod(n, args, prev);
}

async function cmdStatus(ctx: Ctx): Promise<void> {
  const { args } = ctx;
  const n = loadNetConf(ctx.conf, args.args);
  if (n.isLayer3 && n.ipMasq && (await ipMasqBackendFor(n.ipMasqBackend)) === "iptables") {
    const { iptables } = await import("../../shared/net/iptables.js");
    if (!(await iptables(4, ["-t", "nat", "-S", "POSTROUTING"]))) {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        "ipMasq needs iptables, which is not usable",
        "`iptables -t nat -S POSTROUTING` failed; install iptables or load the nat table",
      );
    }
  }
  if (n.isLayer3) await invokeDelegate("STATUS", n.ipamType, args.stdin, args);
}

async function cmdGc(ctx: Ctx): Promise<void> {
  const { args, conf, log } = ctx;
  const n = loadNetConf(conf, "");
  const valid = validAttachments(conf);
  // No list at all is not "nothing is valid": removing every chain of the network on a malformed GC would
  // cut every pod off. host-local, portmap and flannel read it the same way.
  if (valid === undefined) {
    log.warn("GC without cni.dev/valid-attachments: nothing removed");
    return;
  }
  const keep = new Set(valid.map((a) => a.containerID));
  const removed = await (await ipmasq()).gcIpMasq(n.name, keep);
  removed.push(...(await (await ipmasqNft()).gcIpMasqNft(n.name, valid)));
  if (removed.length > 0)
    log.info("removed masquerade chains of gone attachments", { chains: removed.join(",") });
  if (n.isLayer3) await invokeDelegate("GC", n.ipamType, args.stdin, args);
}

function openNetns(path: string): void {
  try {
    checkNetnsPath(path);
  } catch (err) {
    if (err instanceof NetnsPathError) throw wrapError(`failed to open netns ${JSON.stringify(path)}`, err);
    throw err;
  }
}

async function ipamAdd(ctx: Ctx, n: BridgeSettings): Promise<Result> {
  const { args, log } = ctx;
  try {
    const out = await invokeDelegate("ADD", n.ipamType, args.stdin, args);
    return parseResult(out, n.cniVersion);
  } catch (err) {
    // A retried ADD (the runtime timed out on the first) finds its own reservation: release and retry.
    if (!(err instanceof CniError) || !/duplicate allocation is not allowed/.test(err.msg)) throw err;
    log.warn("IPAM holds an address for this attachment already (retried ADD); releasing it first");
    await ipamDel(ctx, n);
    return parseResult(await invokeDelegate("ADD", n.ipamType, args.stdin, args), n.cniVersion);
  }
}

async function ipamDel(ctx: Ctx, n: BridgeSettings): Promise<void> {
  await invokeDelegate("DEL", n.ipamType, ctx.args.stdin, ctx.args);
}

function enableForwarding(gateways: string[]): void {
  try {
    if (gateways.some((g) => !g.includes(":"))) ensureSysctl("net/ipv4/ip_forward", "1");
    if (gateways.some((g) => g.includes(":"))) ensureSysctl("net/ipv6/conf/all/forwarding", "1");
  } catch (err) {
    throw new CniError(ErrorCode.Internal, `failed to enable forwarding: ${(err as Error).message}`, "", {
      cause: err,
    });
  }
}

function dnsConfSet(dns: BridgeNetConf["dns"]): dns is NonNullable<BridgeNetConf["dns"]> {
  return !!dns && (!!dns.nameservers || !!dns.search || !!dns.options || !!dns.domain);
}

export const plugin: Plugin<BridgeNetConf> = {
  name: "bridge",
  schema: bridgeSchema,
  configContext: "failed to load netconf",
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  status: cmdStatus,
  gc: cmdGc,
};
