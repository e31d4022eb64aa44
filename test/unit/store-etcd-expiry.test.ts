import { test } from "uvu";
import * as assert from "uvu/assert";
import { LeaseExpiries } from "../../daemon/store/etcd-expiry.js";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test("a learned end is trusted until half the time to it has passed, then asked again", () => {
  const c = clock();
  const e = new LeaseExpiries(c.now);
  const sent = c.now();
  assert.is(e.learn("7", 100, sent), sent + 100_000);
  assert.is(e.fresh("7"), sent + 100_000);
  c.advance(49_999);
  assert.is(e.fresh("7"), sent + 100_000);
  c.advance(1);
  assert.is(e.fresh("7"), undefined, "stale at half-way: a holder's keep-alive may have moved it");
  assert.is(e.fresh("8"), undefined, "never learned");
});

test("nextStale is the earliest stale time among the given leases; forget and keepOnly drop leases", () => {
  const c = clock();
  const e = new LeaseExpiries(c.now);
  e.learn("a", 100, c.now()); // stale at +50 s
  e.learn("b", 10, c.now()); // stale at +5 s
  assert.is(e.nextStale(["a", "b"]), c.now() + 5000);
  assert.is(e.nextStale(["a", "zz"]), c.now() + 50_000);
  assert.is(e.nextStale(["zz"]), undefined);
  e.forget("b");
  assert.is(e.fresh("b"), undefined);
  e.keepOnly(new Set(["b"]));
  assert.is(e.fresh("a"), undefined);
});

test.run();
