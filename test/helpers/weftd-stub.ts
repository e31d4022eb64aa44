import { existsSync, writeFileSync } from "node:fs";
import type { Backend, BackendContext } from "../../daemon/backend/backend.js";
import { registerBackend } from "../../daemon/backends.js";
import type { Lease } from "../../daemon/lease.js";
import { main } from "../../daemon/main.js";
import { writeFileAtomic } from "../../shared/fs/atomic-file.js";

/**
 * weftd with a recording stand-in for the host-gw backend, for tests of the daemon itself (leases,
 * subnet.env, health) in node namespaces, independent of the kernel side:
 *
 *   WEFTD_STUB_RECORD=<file> ip netns exec <node> node build/test/helpers/weftd-stub.js <weftd flags>
 *
 * Each reconcile writes {own, remotes, at} to <file> (atomically); while <file>.fail exists, reconciles
 * fail with "injected failure".
 */
class RecordingBackend implements Backend {
  readonly type = "host-gw" as const;
  constructor(private readonly record: string) {}

  async prepare(ctx: BackendContext) {
    writeFileSync(
      `${this.record}.prepared`,
      JSON.stringify({ ext: ctx.ext.name, previous: ctx.previous ?? null }),
    );
    return { attrs: { BackendType: "host-gw" }, mtu: ctx.ext.mtu };
  }

  async reconcile(own: Lease, remotes: Lease[]) {
    if (existsSync(`${this.record}.fail`)) throw new Error("injected failure");
    const doc = {
      own: own.subnet,
      remotes: remotes.map((r) => `${r.subnet} via ${r.attrs.PublicIP}`).sort(),
      at: Date.now(),
    };
    writeFileAtomic(this.record, JSON.stringify(doc), { mode: 0o644, dirMode: 0o755 });
  }
}

const record = process.env.WEFTD_STUB_RECORD;
if (!record) throw new Error("WEFTD_STUB_RECORD is not set");
registerBackend("host-gw", () => new RecordingBackend(record));
process.exitCode = await main(process.argv.slice(2));
