/**
 * weftd's /metrics in Prometheus' text format (prom-client, loaded only when the health server runs):
 * the lease, the routes, and the CNI calls served on the socket (per plugin and verb: counts, errors by
 * code, latency), with host-local's addresses used and free in each pod subnet. Gauges read the daemon's
 * status at each scrape; the call metrics are recorded as calls end.
 */
import { readdirSync } from "node:fs";
import { bitsOf, containsText, tryParseCidr, tryParseIp } from "../shared/net/ipaddr.js";
import type { CallRecord } from "./cni-server.js";
import { type DaemonStatus, readiness } from "./health.js";

export interface Metrics {
  registry: import("prom-client").Registry;
  recordCall(r: CallRecord): void;
}

/** Reservation files of a host-local network dir: the addresses it holds (names that are addresses). */
function reserved(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => tryParseIp(f) !== undefined);
  } catch {
    return [];
  }
}

export async function createMetrics(status: DaemonStatus): Promise<Metrics> {
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
    name: "weftd_routed_leases",
    help: "Other nodes' leases the routes (and for vxlan the neighbours and fdb entries) were last reconciled for",
    registers: [registry],
    collect() {
      this.set(status.routedLeases);
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
  new prom.Gauge({
    name: "weftd_ipam_addresses",
    help: "host-local addresses of the pod subnet, by network dir and state (used: reserved by a pod; free: left to allocate, the gateway excluded)",
    labelNames: ["network", "range", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const dir of status.ipamDirs) {
        const held = reserved(dir);
        for (const range of status.podSubnets) {
          const net = tryParseCidr(range);
          if (!net) continue;
          const used = held.filter((ip) => containsText(range, ip)).length;
          // host-local never hands out the network address, the gateway (.1) or, for IPv4, the broadcast.
          const size = 2 ** Math.min(52, bitsOf(net.ip.family) - net.prefix);
          const usable = Math.max(0, size - (net.ip.family === 4 ? 3 : 2));
          const labels = { network: dir, range };
          this.set({ ...labels, state: "used" }, used);
          this.set({ ...labels, state: "free" }, Math.max(0, usable - used));
        }
      }
    },
  });
  const calls = new prom.Counter({
    name: "weftd_cni_calls_total",
    help: "CNI calls served on the socket, by plugin (the one the runtime ran) and verb",
    labelNames: ["plugin", "verb"],
    registers: [registry],
  });
  const errors = new prom.Counter({
    name: "weftd_cni_call_errors_total",
    help: "CNI calls served on the socket that failed, by plugin, verb and CNI error code",
    labelNames: ["plugin", "verb", "code"],
    registers: [registry],
  });
  const latency = new prom.Histogram({
    name: "weftd_cni_call_duration_seconds",
    help: "Time weftd spent on a served CNI call, by plugin and verb",
    labelNames: ["plugin", "verb"],
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  return {
    registry,
    recordCall(r) {
      const labels = { plugin: r.plugin, verb: r.verb };
      calls.inc(labels);
      latency.observe(labels, r.seconds);
      if (r.code !== 0) errors.inc({ ...labels, code: String(r.code) });
    },
  };
}
