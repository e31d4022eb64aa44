import { test } from "uvu";
import * as assert from "uvu/assert";
import { HealthServer, newStatus, readiness } from "../../daemon/health.js";
import { captureLog } from "../helpers/capture-log.js";

const lease = {
  subnet: "10.244.1.0/24",
  attrs: { PublicIP: "192.0.2.1", PublicIPv6: null },
  expiration: 1.9e12,
};

test("ready only once subnet.env is written, and back to not ready for each trouble, with its reason", () => {
  const s = newStatus();
  s.phase = "acquiring a lease";
  assert.equal(readiness(s), { ready: false, reasons: ["not ready yet: acquiring a lease"] });
  s.subnetEnvWritten = true;
  s.lease.lease = lease;
  assert.equal(readiness(s), { ready: true, reasons: [] });

  s.lease.problem = "lease for 10.244.1.0/24 lost: it is gone from the store";
  assert.equal(readiness(s).reasons, ["lease for 10.244.1.0/24 lost: it is gone from the store"]);
  s.lease.problem = undefined;

  s.lease.unreachableSince = Date.parse("2030-01-01T00:00:00Z");
  assert.equal(readiness(s).reasons, [
    "the store is unreachable and the lease expired at 2030-01-01T00:00:00.000Z (the node keeps its last known routes)",
  ]);
  s.lease.unreachableSince = undefined;

  s.lease.changed = {
    from: "10.244.1.0/24",
    to: "10.244.2.0/24",
    at: Date.parse("2030-01-01T00:00:00Z"),
    why: "taken",
  };
  assert.match(
    readiness(s).reasons[0]!,
    /^the pod subnet changed from 10\.244\.1\.0\/24 to 10\.244\.2\.0\/24 /,
  );
  s.lease.changed = undefined;

  s.reconcileError = "route add failed";
  s.rulesError = "iptables-restore failed";
  assert.equal(readiness(s).reasons, [
    "the last reconcile failed: route add failed",
    "the last iptables sync failed: iptables-restore failed",
  ]);
});

test("/healthz, /readyz (200 or 503 with the reasons) and /metrics over HTTP", async () => {
  const status = newStatus();
  status.phase = "acquiring a lease";
  const server = new HealthServer({ ip: "127.0.0.1", port: 0, status, log: captureLog().log });
  await server.start();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const health = await fetch(`${base}/healthz`);
    assert.is(health.status, 200);
    assert.is(await health.text(), "weftd is running\n");

    let ready = await fetch(`${base}/readyz`);
    assert.is(ready.status, 503);
    assert.is(await ready.text(), "weftd is not ready: not ready yet: acquiring a lease\n");
    status.subnetEnvWritten = true;
    status.lease.lease = lease;
    status.lease.lastRenewal = 1.8e12;
    status.leasesSeen = 3;
    status.reconcileErrors = 2;
    ready = await fetch(`${base}/readyz`);
    assert.is(ready.status, 200);
    assert.is(await ready.text(), "weftd is ready\n");

    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^weftd_lease_expiration_timestamp_seconds 1900000000$/m);
    assert.match(metrics, /^weftd_lease_last_renewal_timestamp_seconds 1800000000$/m);
    assert.match(metrics, /^weftd_reconcile_errors_total 2$/m);
    assert.match(metrics, /^weftd_leases 3$/m);
    assert.match(metrics, /^weftd_ready 1$/m);
    assert.match(metrics, /^weftd_lease_held 1$/m);
    status.reconcileErrors = 3;
    assert.match(await (await fetch(`${base}/metrics`)).text(), /^weftd_reconcile_errors_total 3$/m);
    assert.is((await fetch(`${base}/nope`)).status, 404);
  } finally {
    await server.close();
  }
});

test("a port already in use fails start() (weftd exits rather than run without health)", async () => {
  const status = newStatus();
  const a = new HealthServer({ ip: "127.0.0.1", port: 0, status, log: captureLog().log });
  await a.start();
  try {
    const b = new HealthServer({ ip: "127.0.0.1", port: a.port!, status, log: captureLog().log });
    try {
      await b.start();
      assert.unreachable("bound twice");
    } catch (err) {
      assert.match((err as Error).message, /EADDRINUSE/);
    }
  } finally {
    await a.close();
  }
});

test.run();
