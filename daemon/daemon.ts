import { readFile } from "node:fs/promises";
import { writeSubnetEnv } from "../shared/flannel/subnet-env.js";
import type { Logger } from "../shared/log.js";
import type { KernelMonitor, monitorKernel } from "../shared/net/monitor.js";
import { WEFT_VERSION } from "../shared/version.js";
import { formatPrefix, tryPrefix } from "./addr.js";
import { type Backend, type ExternalInterface, WEFT_ROUTE_PROTO } from "./backend/backend.js";
import { type Clock, realClock, sleep, type Timer } from "./clock.js";
import { CniServer, cannotServe } from "./cni-server.js";
import type { ExtIfaceOptions } from "./external-iface.js";
import { describeFlags, type Flags } from "./flags.js";
import { HealthServer, newStatus } from "./health.js";
import { type Lease, type LeaseAttrs, subnetKey } from "./lease.js";
import { LeaseManager } from "./lease-manager.js";
import { RateLimitedLog } from "./log-limit.js";
import { NetConfError, type NetworkConfig, parseNetConf } from "./net-conf.js";
import type { RulesOptions } from "./rules.js";
import type { SubnetStore } from "./store/store.js";

/** What the daemon is built from; main.ts passes the real modules, tests may pass stand-ins. */
export interface DaemonDeps {
  findExternalInterface(o: ExtIfaceOptions): Promise<ExternalInterface>;
  syncRules(o: RulesOptions): Promise<void>;
  createBackend(type: string): Promise<Backend>;
  openStore(flags: Flags, log: Logger): Promise<SubnetStore>;
  /**
   * Kernel change events (shared/net/monitor.ts), so a route or device deleted by hand is repaired at
   * once rather than at the next periodic check; tests may leave it out.
   */
  monitorKernel?: typeof monitorKernel;
  clock?: Clock;
  /** The subnet pick's randomness (tests). */
  random?: () => number;
}

/** A start-up failure weftd cannot get past by waiting: logged, exit status 1. */
export class FatalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FatalError";
  }
}

/**
 * Routes, neighbours and devices are re-checked this often even without a lease change or a kernel event
 * (flanneld: 10 s). WEFT_ROUTE_RESYNC_SECONDS changes it (tests show repairs come from kernel events).
 */
export const ROUTE_RESYNC_MS = 10_000;

function routeResyncMs(): number {
  const s = Number(process.env.WEFT_ROUTE_RESYNC_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : ROUTE_RESYNC_MS;
}

/**
 * weftd in flanneld's order: the external interface, the store, the network config, the backend's own
 * device, the lease, the masquerade/forward rules, the routes to the other nodes, subnet.env; then the
 * watch drives the backend on every lease change, and timers re-apply routes (10 s) and rules
 * (--iptables-resync) so what an operator deletes by hand comes back. A lost lease is re-acquired in
 * process; store trouble never stops the node from programming its last known leases. SIGTERM ends it
 * with status 0 and leaves the lease, the routes and subnet.env for the next start.
 */
export class Daemon {
  readonly status = newStatus();
  private readonly clock: Clock;
  private readonly rlog: RateLimitedLog;
  private readonly stopping = new AbortController();
  private health: HealthServer | undefined;
  private cniServer: CniServer | undefined;
  private store: SubnetStore | undefined;
  private leases: LeaseManager | undefined;
  private backend: Backend | undefined;
  private config: NetworkConfig | undefined;
  private mtu = 0;
  private own: Lease | undefined;
  /** Remote leases by key, with their value as JSON (what the backend was last given). */
  private remotes = new Map<string, { lease: Lease; value: string }>();
  /** The last set of leases the store delivered; undefined until the first (never reconcile without one). */
  private all: Lease[] | undefined;
  private readonly ignored = new Set<string>();
  private stopWatch: (() => void) | undefined;
  private kernelMonitor: KernelMonitor | undefined;
  private kernelKick: Timer | undefined;
  private timers: Timer[] = [];
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;

  constructor(
    private readonly flags: Flags,
    private readonly deps: DaemonDeps,
    private readonly log: Logger,
  ) {
    this.clock = deps.clock ?? realClock;
    this.rlog = new RateLimitedLog(log, 60_000, this.clock);
    this.status.cniOnly = flags.cniOnly;
  }

  /** Runs until stop(); resolves with the exit status (0 after a stop, 1 after a fatal error). */
  async run(): Promise<number> {
    try {
      await this.start();
      if (!this.stopping.signal.aborted)
        await new Promise((r) => this.stopping.signal.addEventListener("abort", r));
      this.log.info("Exiting cleanly: the lease, the routes and subnet.env are kept for the next start");
      return 0;
    } catch (err) {
      if (this.stopping.signal.aborted) return 0;
      this.log.error(
        err instanceof FatalError ? err.message : `weftd failed: ${(err as Error).stack ?? err}`,
      );
      return 1;
    } finally {
      await this.shutdown();
    }
  }

  /** SIGTERM/SIGINT: stop the loops; nothing is released or removed. */
  stop(): void {
    if (!this.stopping.signal.aborted) this.log.info("Shutting down (signal)");
    this.stopping.abort();
    this.leases?.stop();
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private phase(p: string): void {
    this.status.phase = p;
  }

  private async start(): Promise<void> {
    const { flags, deps, log } = this;
    log.info(`weftd v${WEFT_VERSION} starting`);
    log.info(`CLI flags config: ${describeFlags(flags)}`);
    if (flags.healthzPort > 0) {
      this.health = new HealthServer({
        ip: flags.healthzIp,
        port: flags.healthzPort,
        status: this.status,
        log,
      });
      await this.health.start().catch((err) => {
        throw new FatalError(`Start healthz server error: ${(err as Error).message}`, { cause: err });
      });
    }

    if (flags.cniSocket) await this.serveCni();
    if (flags.cniOnly) {
      this.phase("serving CNI calls only (--cni-only)");
      const subnets = await readPreviousSubnets(flags.subnetFile);
      if (subnets) this.status.podSubnets = podSubnetsOf(subnets);
      log.info(
        `Serving CNI calls only: no lease, routes or rules (--cni-only); pod subnet from ${flags.subnetFile}`,
      );
      return;
    }

    this.phase("finding the external interface");
    const ext = await deps
      .findExternalInterface({
        iface: flags.iface,
        ...(flags.publicIp ? { publicIp: flags.publicIp } : {}),
        ...(flags.publicIpv6 ? { publicIpv6: flags.publicIpv6 } : {}),
        log,
      })
      .catch((err) => {
        throw new FatalError(`Failed to find any valid interface to use: ${(err as Error).message}`, {
          cause: err,
        });
      });
    // findExternalInterface logs flanneld's "Using interface with name ..." lines itself.
    if (!ext.publicIp) throw new FatalError(`Interface ${ext.name} has no IPv4 address: set --public-ip`);

    const store = await deps.openStore(flags, log);
    this.store = store;
    log.info(`Created subnet manager: ${store.description}`);

    this.phase("reading the network config");
    const config = await this.loadConfig(store);
    if (!config) return;
    this.config = config;
    log.info(`Found network config - Backend type: ${config.backend.type}`);
    if (!config.enableIPv4)
      throw new FatalError(
        "EnableIPv4 is false: IPv6-only networks need an IPv4 subnet in flanneld's subnet keys, which the file and etcd stores use; set EnableIPv4 with a Network",
      );
    if (config.enableIPv6 && !ext.publicIpv6)
      throw new FatalError(`EnableIPv6 is set but ${ext.name} has no IPv6 address: set --public-ipv6`);

    this.phase("preparing the backend");
    const backend = await deps.createBackend(config.backend.type).catch((err) => {
      throw new FatalError(`Error fetching backend: ${(err as Error).message}`, { cause: err });
    });
    this.backend = backend;
    const previousAttrs = await this.previousAttrs(store, ext.publicIp);
    const prepared = await backend
      .prepare({ config, ext, ...(previousAttrs ? { previous: previousAttrs } : {}), log })
      .catch((err) => {
        throw new FatalError(`Error registering network: ${(err as Error).message}`, { cause: err });
      });
    this.mtu = prepared.mtu;
    const attrs: LeaseAttrs = {
      PublicIP: ext.publicIp,
      PublicIPv6: config.enableIPv6 ? (ext.publicIpv6 ?? null) : null,
      ...prepared.attrs,
    };

    this.phase("acquiring a lease");
    const previous = await readPreviousSubnets(flags.subnetFile);
    const leases = new LeaseManager({
      store,
      config,
      attrs,
      ...(previous ? { previous } : {}),
      ttlMs: flags.subnetLeaseTtlMs,
      renewMarginMs: flags.subnetLeaseRenewMarginMs,
      log,
      clock: this.clock,
      ...(this.deps.random ? { random: this.deps.random } : {}),
    });
    this.leases = leases;
    this.status.lease = leases.status;
    if (this.stopped) return;
    let lease: Lease;
    try {
      lease = await leases.acquire();
    } catch (err) {
      if (this.stopped) return;
      throw err;
    }
    this.own = lease;
    this.status.podSubnets = podSubnetsOf(lease);

    this.phase("installing the iptables rules");
    await this.syncRules().then((err) => {
      if (err) throw new FatalError(`Failed to setup masq rules: ${err}`);
    });

    this.phase("programming the routes to the other nodes");
    try {
      this.onLeases(await store.list());
      await this.reconcile();
    } catch (err) {
      // Reconciling against an empty set would remove every route to the other nodes: wait for the
      // watch's first set instead, and say why the node is not ready meanwhile.
      this.status.reconcileError = `no list of leases from ${store.description} yet: ${(err as Error).message}`;
      this.log.warn(this.status.reconcileError);
    }

    this.phase("writing subnet.env");
    this.writeSubnetFile();
    this.phase("running");

    this.stopWatch = store.watch(
      (all) => this.onLeases(all),
      (err) => {
        this.status.watchError = err.message;
        // A store's own errors may already name it ("etcd http://...: the watch broke").
        const msg = err.message.startsWith(store.description)
          ? err.message
          : `${store.description}: ${err.message}`;
        this.rlog.warn(`Watch of ${msg}`);
      },
    );
    leases.start({
      onLease: (l, prev) => this.onOwnLease(l, prev),
      onStatus: () => undefined,
    });
    this.every(routeResyncMs(), () => {
      if (!this.status.subnetEnvWritten) this.writeSubnetFile();
      this.requestReconcile();
    });
    this.kernelMonitor = this.deps.monitorKernel?.(
      ["link", "route", "neigh"],
      (line) => this.onKernelEvent(line),
      (err) => this.rlog.warn(err.message),
    );
    this.every(flags.iptablesResync * 1000, () => void this.syncRules());
  }

  /** The network config: the file when --net-config-path is given, else the store's, else the default file. */
  private async loadConfig(store: SubnetStore): Promise<NetworkConfig | undefined> {
    const path = this.flags.netConfigPath;
    let wait = 1000;
    while (!this.stopped) {
      let text: string | undefined;
      let source = path;
      try {
        if (!this.flags.netConfigPathGiven) {
          text = await store.networkConfig();
          source = `${store.description} (network config)`;
        }
        if (text === undefined) {
          source = path;
          text = await readFile(path, "utf8");
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const msg = e.code === "ENOENT" ? `open ${path}: no such file or directory` : e.message;
        this.rlog.error(`Couldn't fetch network config: ${msg} (retrying)`);
        // /readyz says why too, as it does while a lease cannot be acquired.
        this.phase(`reading the network config: ${msg}`);
        await sleep(this.clock, wait, this.stopping.signal);
        wait = Math.min(wait * 2, 10_000);
        continue;
      }
      try {
        return await parseNetConf(text);
      } catch (err) {
        if (err instanceof NetConfError)
          throw new FatalError(`Invalid network config in ${source}: ${err.message}`, { cause: err });
        throw err;
      }
    }
    return undefined;
  }

  /** What this node advertised before (its lease by PublicIP), so the backend keeps e.g. its VTEP MAC. */
  private async previousAttrs(store: SubnetStore, publicIp: string): Promise<LeaseAttrs | undefined> {
    try {
      return (await store.list()).find((l) => l.attrs.PublicIP === publicIp)?.attrs;
    } catch (err) {
      this.log.warn(`Could not read the previous lease of ${publicIp}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** A new set of leases from the store: log what changed, check our own, re-program the backend. */
  private onLeases(all: Lease[]): void {
    this.status.leasesSeen = all.length;
    this.status.watchError = undefined;
    const first = this.all === undefined;
    this.all = all;
    this.leases?.observe(all);
    this.refreshRemotes(first);
  }

  /** The remote leases from the last set (all but our own), logging and reconciling what changed. */
  private refreshRemotes(first = false): void {
    const all = this.all;
    const own = this.own;
    if (!own || !all) return;
    const ownKey = subnetKey(own);
    const next = new Map<string, { lease: Lease; value: string }>();
    for (const l of all) {
      const key = subnetKey(l);
      if (key === ownKey) continue;
      next.set(key, { lease: l, value: JSON.stringify(l.attrs) });
    }
    const type = this.config?.backend.type;
    let changed = false;
    for (const [key, n] of next) {
      const before = this.remotes.get(key);
      if (before?.value === n.value) continue;
      changed = true;
      if (n.lease.attrs.BackendType !== type) {
        if (!this.ignored.has(key))
          this.log.warn(
            `Ignoring lease ${n.lease.subnet}: backend type ${n.lease.attrs.BackendType ?? "none"}, this node runs ${type}`,
          );
        this.ignored.add(key);
        continue;
      }
      this.log.info(`Subnet added: ${n.lease.subnet} via ${n.lease.attrs.PublicIP}`);
    }
    for (const [key, b] of this.remotes) {
      if (next.has(key)) continue;
      changed = true;
      this.ignored.delete(key);
      if (b.lease.attrs.BackendType === type) this.log.info(`Subnet removed: ${b.lease.subnet}`);
    }
    this.remotes = next;
    if ((changed || first) && this.status.subnetEnvWritten) this.requestReconcile();
  }

  /** The lease came back after a loss; if its subnet changed, everything that names it is redone. */
  private onOwnLease(lease: Lease, previous: Lease): void {
    this.own = lease;
    this.status.podSubnets = podSubnetsOf(lease);
    this.refreshRemotes();
    if (lease.subnet !== previous.subnet || lease.ipv6Subnet !== previous.ipv6Subnet) this.writeSubnetFile();
    void this.syncRules();
    this.requestReconcile();
  }

  private writeSubnetFile(): void {
    const { config, own } = this;
    if (!config || !own) return;
    try {
      writeSubnetEnv(this.flags.subnetFile, {
        ...(config.enableIPv4 && config.network ? { network: config.network, subnet: own.subnet } : {}),
        ...(config.enableIPv6 && config.ipv6Network
          ? { ipv6Network: config.ipv6Network, ipv6Subnet: own.ipv6Subnet }
          : {}),
        mtu: this.mtu,
        ipMasq: this.flags.ipMasq,
      });
    } catch (err) {
      this.rlog.error(`Failed to write subnet file: ${(err as Error).message}`);
      return;
    }
    this.log.info(`Wrote subnet file to ${this.flags.subnetFile}`);
    if (!this.status.subnetEnvWritten) this.log.info("weftd is ready");
    this.status.subnetEnvWritten = true;
  }

  /** Applies the masquerade/forward rules; returns the failure text (also kept for /readyz), if any. */
  private async syncRules(): Promise<string | undefined> {
    const { config, own } = this;
    if (!config || !own || this.stopped) return undefined;
    try {
      await this.deps.syncRules({
        ...(config.network ? { network: config.network } : {}),
        ...(config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
        lease: own,
        ipMasq: this.flags.ipMasq,
        forwardRules: this.flags.iptablesForwardRules,
        // --random-fully when iptables supports it, unless the flag turns it off (flanneld's rule).
        ...(this.flags.ipMasqRandomFully ? {} : { randomFully: false }),
        log: this.log,
      });
      if (this.status.rulesError) this.log.info("iptables rules in place again");
      this.status.rulesError = undefined;
      return undefined;
    } catch (err) {
      const msg = (err as Error).message;
      this.status.rulesError = msg;
      this.rlog.error(`Failed to ensure iptables rules: ${msg}`);
      return msg;
    }
  }

  /** Reconciles now, or once more after the one running (changes arriving meanwhile are coalesced). */
  private requestReconcile(): void {
    if (this.stopped) return;
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    void this.reconcile();
  }

  private reconcile(): Promise<void> {
    const run = async () => {
      do {
        this.reconcileAgain = false;
        const { backend, own } = this;
        if (!backend || !own || !this.all || this.stopped) return;
        try {
          await backend.reconcile(
            own,
            [...this.remotes.values()].map((r) => r.lease),
          );
          this.status.routedLeases = this.remotes.size;
          if (this.status.reconcileError) this.log.info("Routes reconciled again after a failure");
          this.status.reconcileError = undefined;
        } catch (err) {
          this.status.reconcileErrors++;
          this.status.reconcileError = (err as Error).message;
          this.rlog.error(`Failed to reconcile routes: ${(err as Error).message}`);
        }
      } while (this.reconcileAgain && !this.stopped);
    };
    this.reconciling = run().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /**
   * A deletion of what the backend programs (a route with weft's proto, or anything on a flannel
   * device) brings a reconcile within 100 ms; the burst one deletion makes (a device takes its routes,
   * neighbours and fdb entries with it) becomes one reconcile. flanneld recreates flannel.N on
   * RTM_DELLINK the same way, but does not replay the leases onto it (anchors 10.1, item 7).
   */
  private onKernelEvent(line: string): void {
    if (!isBackendDeletion(line) || this.stopped || this.kernelKick) return;
    this.kernelKick = this.clock.setTimeout(() => {
      this.kernelKick = undefined;
      if (this.status.subnetEnvWritten) this.requestReconcile();
    }, 100);
  }

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      if (this.stopped) return;
      fn();
      this.timers.push(this.clock.setTimeout(tick, ms));
    };
    this.timers.push(this.clock.setTimeout(tick, ms));
  }

  private async shutdown(): Promise<void> {
    for (const t of this.timers) this.clock.clearTimeout(t);
    if (this.kernelKick) this.clock.clearTimeout(this.kernelKick);
    this.kernelMonitor?.stop();
    this.stopWatch?.();
    this.leases?.stop();
    await this.leases?.drained();
    await this.reconciling?.catch(() => undefined);
    await this.store?.close().catch(() => undefined);
    await this.cniServer?.close();
    await this.health?.close();
  }

  /**
   * Serves the plugins' calls on --cni-socket (daemon/cni-server.ts). A socket that cannot be served is
   * fatal, as the healthz address is: the operator asked for it. A weftd without what the plugins need
   * (cannotServe: a container that is not privileged) does not serve: it says why and carries on, since
   * the plugins then do the work themselves, unless serving is all it is for (--cni-only). The pod
   * subnets /metrics counts addresses in come from the lease, or with --cni-only from subnet.env.
   */
  private async serveCni(): Promise<void> {
    const { flags, log } = this;
    const obstacle = cannotServe();
    if (obstacle) {
      const why = `${obstacle} (run it in a privileged container, as deploy/weft.yml's cni container)`;
      if (flags.cniOnly) throw new FatalError(`Cannot serve CNI calls on ${flags.cniSocket}: ${why}`);
      // The plugins do the work themselves: no socket, so they do not even try.
      log.warn(`Not serving CNI calls on ${flags.cniSocket}: ${why}; the plugins do the work themselves`);
      return;
    }
    const server = new CniServer({
      path: flags.cniSocket,
      log,
      onCall: (r) => {
        if (r.ipamDir) this.status.ipamDirs.add(r.ipamDir);
        this.health?.recordCall(r);
        if (flags.cniOnly && r.verb === "ADD") {
          void readPreviousSubnets(flags.subnetFile).then((s) => {
            this.status.podSubnets = s ? podSubnetsOf(s) : [];
          });
        }
      },
    });
    await server.listen().catch((err) => {
      throw new FatalError(`Cannot serve CNI calls: ${(err as Error).message}`, { cause: err });
    });
    this.cniServer = server;
    this.status.cniServing = true;
    log.info(`Serving CNI calls on ${flags.cniSocket}`);
  }
}

function podSubnetsOf(l: Pick<Lease, "subnet" | "ipv6Subnet">): string[] {
  return [l.subnet, l.ipv6Subnet].filter((s): s is string => !!s);
}

/**
 * FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET of the existing subnet.env (flanneld re-requests them), read
 * leniently: a partial or damaged file still names the subnet the node's pods use.
 */
export async function readPreviousSubnets(
  file: string,
): Promise<Pick<Lease, "subnet" | "ipv6Subnet"> | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  const out: Pick<Lease, "subnet" | "ipv6Subnet"> = {};
  for (const line of text.split("\n")) {
    const [key, value] = line.replace(/\r$/, "").split("=", 2) as [string, string | undefined];
    const p = tryPrefix(value);
    if (!p) continue;
    if (key === "FLANNEL_SUBNET" && p.family === 4) out.subnet = formatPrefix(p);
    if (key === "FLANNEL_IPV6_SUBNET" && p.family === 6) out.ipv6Subnet = formatPrefix(p);
  }
  return out.subnet || out.ipv6Subnet ? out : undefined;
}

/**
 * Whether an `ip -o monitor` line reports the deletion of something a backend programs: a route tagged
 * with weft's protocol, or a flannel device (flannel.<VNI>, flannel-v6.<VNI>) or a neighbour, fdb entry
 * or route on one. Pod veths come and go all day; those never trigger a reconcile.
 */
export function isBackendDeletion(line: string): boolean {
  if (!line.startsWith("Deleted ")) return false;
  return new RegExp(`\\bproto ${WEFT_ROUTE_PROTO}\\b`).test(line) || /\bflannel(-v6)?\.\d+\b/.test(line);
}
