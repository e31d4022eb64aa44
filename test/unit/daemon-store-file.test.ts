import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeLeaseAttrs, type Lease, subnetKey } from "../../daemon/lease.js";
import { encodeFileValue, FileStore } from "../../daemon/store/file.js";
import { LeaseLostError, StoreUnavailableError } from "../../daemon/store/store.js";
import { storeContract } from "../helpers/store-contract.js";

storeContract(
  "file",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-store-"));
    const stores: FileStore[] = [];
    return {
      async open() {
        const s = new FileStore({ dir, rescanMs: 500 });
        stores.push(s);
        return s;
      },
      async writeRaw(lease, ttlMs) {
        const value = ttlMs === undefined ? lease : { ...lease, expiration: Date.now() + ttlMs };
        writeFileSync(join(dir, subnetKey(lease)), encodeFileValue(value));
      },
      async deleteRaw(lease) {
        rmSync(join(dir, subnetKey(lease)), { force: true });
      },
      async writeConfig(doc) {
        writeFileSync(join(dir, "config"), doc);
      },
      async dispose() {
        await Promise.all(stores.map((st) => st.close()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { shortTtlMs: 300, expiryGraceMs: 300 },
);

const tmp = () => mkdtempSync(join(tmpdir(), "weft-store-"));
const attrs = { PublicIP: "192.0.2.1", PublicIPv6: null, BackendType: "host-gw" };

test("a lease file is named by flanneld's subnet key and holds flanneld's value plus Expiration", async () => {
  const dir = tmp();
  try {
    const s = new FileStore({ dir, now: () => Date.parse("2030-01-02T03:04:05.000Z") });
    await s.create({ subnet: "10.244.3.0/24", ipv6Subnet: "fc00:0:0:3::/64", attrs }, 3600e3);
    assert.equal(
      readdirSync(dir).filter((n) => !n.startsWith(".")),
      ["10.244.3.0-24&fc00:0:0:3::-64"],
    );
    assert.is(
      readFileSync(join(dir, "10.244.3.0-24&fc00:0:0:3::-64"), "utf8"),
      '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"host-gw","Expiration":"2030-01-02T04:04:05.000Z"}\n',
    );
    // What flanneld would decode is exactly its own value: Expiration is one more (ignored) member.
    const { Expiration: _e, ...value } = JSON.parse(
      readFileSync(join(dir, "10.244.3.0-24&fc00:0:0:3::-64"), "utf8"),
    );
    assert.is(JSON.stringify(value), encodeLeaseAttrs(attrs));
    assert.is(
      encodeFileValue({ subnet: "10.1.0.0/24", attrs }),
      `${encodeLeaseAttrs(attrs)}\n`,
      "reservation",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("expiry follows the store's clock; renewing an expired lease is a loss, creating over it a reclaim", async () => {
  const dir = tmp();
  let now = 1_000_000;
  try {
    const s = new FileStore({ dir, now: () => now });
    const l = (await s.create({ subnet: "10.244.4.0/24", attrs }, 1000))!;
    assert.is(l.expiration, 1_001_000);
    now += 999;
    assert.is((await s.list()).length, 1);
    now += 1;
    assert.equal(await s.list(), [], "expired at its expiration");
    try {
      await s.renew(l, 1000);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, LeaseLostError);
      assert.match((err as Error).message, /expired at .* before it was renewed/);
    }
    const other = await s.create(
      { subnet: "10.244.4.0/24", attrs: { ...attrs, PublicIP: "192.0.2.9" } },
      1000,
    );
    assert.is(other?.attrs.PublicIP, "192.0.2.9", "the expired file was reclaimed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("files that are not leases are skipped; a malformed lease is reported once and never overwritten", async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, "config"), '{"Network":"10.244.0.0/16"}');
    writeFileSync(join(dir, "README"), "not a lease");
    writeFileSync(join(dir, ".tmp-10.244.9.0-24-abc"), "{}");
    writeFileSync(join(dir, "10.244.9.0-24"), "garbage");
    writeFileSync(join(dir, "10.244.010.0-24"), encodeLeaseAttrs(attrs));
    const s = new FileStore({ dir });
    assert.equal(await s.list(), []);
    assert.is(
      await s.create({ subnet: "10.244.9.0/24", attrs }, 1000),
      undefined,
      "held by what it cannot read",
    );
    assert.is(readFileSync(join(dir, "10.244.9.0-24"), "utf8"), "garbage");
    const errors: string[] = [];
    let sets = 0;
    const stop = s.watch(
      () => sets++,
      (e) => errors.push(e.message),
    );
    await until(() => sets > 0);
    stop();
    assert.equal(errors, [
      `ignoring ${join(dir, "10.244.9.0-24")}: bad lease value: invalid character 'g' looking for beginning of value`,
    ]);
    assert.is(await s.networkConfig(), '{"Network":"10.244.0.0/16"}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a lease value is read as Go reads it: keys in any case, unknown keys ignored", async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, "10.244.5.0-24"), '{"publicip":"192.0.2.7","backendtype":"vxlan","Extra":1}');
    const [l] = await new FileStore({ dir }).list();
    assert.equal(l, {
      subnet: "10.244.5.0/24",
      attrs: { PublicIP: "192.0.2.7", PublicIPv6: null, BackendType: "vxlan" },
    } satisfies Lease);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a store without a config file has none; no temp or lock file is left behind", async () => {
  const dir = tmp();
  try {
    const s = new FileStore({ dir });
    assert.is(await s.networkConfig(), undefined);
    const l = (await s.create({ subnet: "10.244.6.0/24", attrs }, 60_000))!;
    await s.renew(l, 60_000);
    await s.release(l);
    assert.equal(
      readdirSync(dir).filter((n) => n !== ".lock"),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unreadable directory is StoreUnavailableError, not an empty store", async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, "file"), "");
    const s = new FileStore({ dir: join(dir, "file") });
    try {
      await s.list();
      assert.unreachable();
    } catch (err) {
      assert.instance(err, StoreUnavailableError);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test.run();
