import { createServer, type Server } from "node:http";
import type { Logger } from "../shared/log.js";
import type { LeaseStatus } from "./lease-manager.js";

/**
 * weftd's health endpoints on --healthz-ip:--healthz-port (off when the port is 0, as flanneld's):
 * - `/healthz`: 200 while the process runs;
 * - `/readyz`: 200 once subnet.env is written and the routes are in place, and back to 503, with the
 *   reasons in the body, whenever the lease is lost, the store stays unreachable past the lease's
 *   expiry, the subnet had to change, or the last reconcile or rules sync failed (flanneld's /readyz
 *   never turns back);
 * - `/metrics`: Prometheus text (prom-client): lease expiry, last renewal, reconcile errors, leases seen.
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
}

export function newStatus(): DaemonStatus {
  return { phase: "starting", subnetEnvWritten: false, lease: {}, reconcileErrors: 0, leasesSeen: 0 };
}

/** Ready, or the reasons it is not (each one line an operator can act on). */
export function readiness(s: DaemonStatus): { ready: boolean; reasons: string[] } {
  const reasons: string[] = [];
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

  constructor(private readonly o: HealthOptions) {}

  /** Listens; rejects when the address cannot be bound (weftd then exits, as flanneld panics). */
  async start(): Promise<void> {
    const metrics = await createMetrics(this.o.status);
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

/** The metrics, read from the status at each scrape (prom-client is loaded only when serving). */
async function createMetrics(status: DaemonStatus) {
  const prom = await import("prom-client");
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry, prefix: "weftd_" });
  const seconds = (ms: number | undefined) => (ms === undefined ? Number.NaN : ms / 1000);
  new prom.Gauge({
    name: "weftd_lease_expiration_timestamp_seconds",
    help: "When the node's lease expires unless renewed (NaN for a reservation or without a lease)",
    registers: [registry],
    collect() {
      this.set(seconds(status.lease.lease?.expiration));
    },
  });
  new prom.Gauge({
    name: "weftd_lease_last_renewal_timestamp_seconds",
    help: "When the node's lease was last written to the store (acquired or renewed)",
    registers: [registry],
    collect() {
      this.set(seconds(status.lease.lastRenewal));
    },
  });
  let counted = 0;
  new prom.Counter({
    name: "weftd_reconcile_errors_total",
    help: "Reconciles of routes and devices that failed",
    registers: [registry],
    collect() {
      if (status.reconcileErrors > counted) this.inc(status.reconcileErrors - counted);
      counted = status.reconcileErrors;
    },
  });
  new prom.Gauge({
    name: "weftd_leases",
    help: "Leases seen in the store at the last change (this node's included)",
    registers: [registry],
    collect() {
      this.set(status.leasesSeen);
    },
  });
  new prom.Gauge({
    name: "weftd_ready",
    help: "1 when /readyz answers 200",
    registers: [registry],
    collect() {
      this.set(readiness(status).ready ? 1 : 0);
    },
  });
  new prom.Gauge({
    name: "weftd_lease_held",
    help: "1 while the node holds its lease",
    registers: [registry],
    collect() {
      this.set(status.lease.lease && !status.lease.problem ? 1 : 0);
    },
  });
  return { registry };
}
