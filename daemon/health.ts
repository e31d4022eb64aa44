import { createServer, type Server } from "node:http";
import type { Logger } from "../shared/log.js";
import type { CallRecord } from "./cni-server.js";
import type { LeaseStatus } from "./lease-manager.js";
import { createMetrics, type Metrics } from "./metrics.js";

/**
 * weftd's health endpoints on --healthz-ip:--healthz-port (off when the port is 0, as flanneld's):
 * - `/healthz`: 200 while the process runs;
 * - `/readyz`: 200 once subnet.env is written and the routes are in place, and back to 503, with the
 *   reasons in the body, whenever the lease is lost, the store stays unreachable past the lease's
 *   expiry, the subnet had to change, or the last reconcile or rules sync failed (flanneld's /readyz
 *   never turns back);
 * - `/metrics`: Prometheus text (daemon/metrics.ts).
 */

/** What the daemon knows about itself, updated in place and read on every request. */
export interface DaemonStatus {
  /** What it is doing while not yet running ("acquiring a lease"). */
  phase: string;
  subnetEnvWritten: boolean;
  lease: LeaseStatus;
  /** The last watch error, until the watch delivers again. */
  watchError?: string;
  /** The last reconcile failure, until one succeeds. */
  reconcileError?: string;
  reconcileErrors: number;
  /** The last rules sync failure, until one succeeds. */
  rulesError?: string;
  /** Leases in the store at the last delivery (this node's included). */
  leasesSeen: number;
  /** Remote leases the routes were last reconciled for (0 before the first). */
  routedLeases: number;
  /** --cni-only: ready once the CNI socket is served (no lease, no routes). */
  cniOnly?: boolean;
  /** The CNI socket is served (set once it listens). */
  cniServing?: boolean;
  /** The pod subnets whose host-local addresses /metrics counts (the lease's, or subnet.env's). */
  podSubnets: string[];
  /** host-local data directories (`<dataDir>/<network>`) the served calls used. */
  ipamDirs: Set<string>;
}

export function newStatus(): DaemonStatus {
  return {
    phase: "starting",
    subnetEnvWritten: false,
    lease: {},
    reconcileErrors: 0,
    leasesSeen: 0,
    routedLeases: 0,
    podSubnets: [],
    ipamDirs: new Set(),
  };
}

/** Ready, or the reasons it is not (each one line an operator can act on). */
export function readiness(s: DaemonStatus): { ready: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (s.cniOnly) {
    if (!s.cniServing) reasons.push(`not ready yet: ${s.phase}`);
    return { ready: reasons.length === 0, reasons };
  }
  if (!s.subnetEnvWritten) reasons.push(`not ready yet: ${s.phase}`);
  if (s.lease.problem) reasons.push(s.lease.problem);
  if (s.lease.unreachableSince !== undefined)
    reasons.push(
      `the store is unreachable and the lease expired at ${new Date(s.lease.unreachableSince).toISOString()} (the node keeps its last known routes)`,
    );
  const c = s.lease.changed;
  if (c)
    reasons.push(
      `the pod subnet changed from ${c.from} to ${c.to} at ${new Date(c.at).toISOString()} (${c.why}): pods started before must be recreated; restart weftd to clear this`,
    );
  if (s.reconcileError) reasons.push(`the last reconcile failed: ${s.reconcileError}`);
  if (s.rulesError) reasons.push(`the last iptables sync failed: ${s.rulesError}`);
  return { ready: reasons.length === 0, reasons };
}

export interface HealthOptions {
  ip: string;
  port: number;
  status: DaemonStatus;
  log: Logger;
}

export class HealthServer {
  private server: Server | undefined;
  private metrics: Metrics | undefined;

  constructor(private readonly o: HealthOptions) {}

  /** Listens; rejects when the address cannot be bound (weftd then exits, as flanneld panics). */
  async start(): Promise<void> {
    const metrics = await createMetrics(this.o.status);
    this.metrics = metrics;
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const text = (code: number, body: string) => {
        res.writeHead(code, { "content-type": "text/plain; charset=utf-8" });
        res.end(`${body}\n`);
      };
      if (path === "/healthz") return text(200, "weftd is running");
      if (path === "/readyz") {
        const r = readiness(this.o.status);
        return r.ready
          ? text(200, "weftd is ready")
          : text(503, `weftd is not ready: ${r.reasons.join("; ")}`);
      }
      if (path === "/metrics") {
        metrics.registry.metrics().then(
          (body) => {
            res.writeHead(200, { "content-type": metrics.registry.contentType });
            res.end(body);
          },
          (err) => text(500, String(err)),
        );
        return;
      }
      text(404, "not found: try /healthz, /readyz or /metrics");
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.ip, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.o.log.info(
      `Start healthz server on ${this.o.ip.includes(":") ? `[${this.o.ip}]` : this.o.ip}:${this.o.port}`,
    );
  }

  /** Counts a CNI call served on the socket (/metrics). */
  recordCall(r: CallRecord): void {
    this.metrics?.recordCall(r);
  }

  /** The port listened on (the one asked for, or the kernel's pick for 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
