import { addrShow, addrsOf } from "../../shared/net/addr.js";
import { IpBatchError, ipBatch } from "../../shared/net/ip.js";
import { canonicalIpText } from "../../shared/net/ipaddr.js";
import {
  isProto,
  mainTableRoutes,
  type RouteSpec,
  routeDel,
  routeReplace,
  routeShow,
  routeSpecOf,
} from "../../shared/net/route.js";
import type { Lease } from "../lease.js";
import { type Backend, type BackendContext, WEFT_ROUTE_PROTO } from "./backend.js";
import {
  attemptAll,
  type BackendOptions,
  type Family,
  familyView,
  LeaseLog,
  planRoutes,
  remotesOf,
  Serial,
} from "./common.js";

/**
 * host-gw (flannel's pkg/backend/hostgw with route_network.go): every other node's pod subnet is routed
 * via that node's public IP on the external interface, `<subnet> via <public IP> dev <ext> proto 87`.
 * Needs the nodes on one layer-2 segment and the public IP on the interface (no NAT). MTU: the
 * interface's (no encapsulation).
 */
export class HostGwBackend implements Backend {
  readonly type = "host-gw" as const;
  private ctx: BackendContext | undefined;
  private readonly leases = new LeaseLog(() => this.need().log);

  private readonly serial = new Serial();

  constructor(private readonly opts: BackendOptions = {}) {}

  private need(): BackendContext {
    if (!this.ctx) throw new Error("host-gw: reconcile called before prepare");
    return this.ctx;
  }

  private batchOpts() {
    return this.opts.netns ? { netns: this.opts.netns } : {};
  }

  prepare(ctx: BackendContext): Promise<{ attrs: { BackendType: string }; mtu: number }> {
    return this.serial.run(() => this.prepareNow(ctx));
  }

  private async prepareNow(ctx: BackendContext): Promise<{ attrs: { BackendType: string }; mtu: number }> {
    const { ext, config } = ctx;
    const [read] = await ipBatch([addrShow(ext.name)], this.batchOpts());
    const have = new Set(addrsOf(read).map((a) => canonicalIpText(a.local)));
    const check = (family: Family, ip: string | undefined) => {
      if (!ip) throw new Error(`host-gw needs a public IPv${family} address, and ${ext.name} has none`);
      if (!have.has(canonicalIpText(ip))) {
        // flanneld's check is ExtAddr == IfaceAddr; any address of the interface is enough here.
        throw new Error(
          `${ip} is not an address of ${ext.name}: your PublicIP differs from interface IP, meaning that ` +
            "probably you're on a NAT, which is not supported by host-gw backend",
        );
      }
    };
    if (config.enableIPv4) check(4, ext.publicIp);
    if (config.enableIPv6) check(6, ext.publicIpv6);
    this.ctx = ctx;
    return { attrs: { BackendType: "host-gw" }, mtu: ext.mtu };
  }

  reconcile(own: Lease, remotes: Lease[]): Promise<void> {
    return this.serial.run(() => this.reconcileNow(own, remotes));
  }

  private async reconcileNow(own: Lease, remotes: Lease[]): Promise<void> {
    const { config, ext } = this.need();
    const [r4, r6] = await ipBatch([routeShow(4), routeShow(6)], this.batchOpts());
    const mine = remotesOf(this.type, own, remotes);
    const enabled = (f: Family) => (f === 4 ? config.enableIPv4 : config.enableIPv6);
    const views = (f: Family) => (enabled(f) ? mine.flatMap((l) => familyView(l, f) ?? []) : []);
    const knownBefore = this.leases.update([...views(4), ...views(6)]);
    const stale: RouteSpec[] = [];
    const replace: RouteSpec[] = [];
    for (const family of [4, 6] as const) {
      const wanted = views(family).map((v) => ({
        dst: v.subnet,
        gw: v.publicIp,
        dev: ext.name,
        proto: WEFT_ROUTE_PROTO,
      }));
      const plan = planRoutes(mainTableRoutes(family === 4 ? r4 : r6), wanted, family, (r) =>
        isProto(r, WEFT_ROUTE_PROTO),
      );
      this.leases.repairs(plan, knownBefore);
      stale.push(...plan.stale.map((r) => routeSpecOf(r, family)));
      replace.push(...plan.replace.map((p) => p.want));
    }
    const cmds = [...stale.map((r) => routeDel(r)), ...replace.map((r) => routeReplace(r))];
    if (cmds.length === 0) return;
    try {
      await ipBatch(attemptAll(cmds), this.batchOpts());
    } catch (err) {
      if (err instanceof IpBatchError) throw new Error(`host-gw: ${err.message}`, { cause: err });
      throw err;
    }
  }
}
