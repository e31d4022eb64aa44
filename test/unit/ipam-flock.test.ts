import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FileLock, withFileLock } from "../../shared/ipam/flock.js";

/**
 * The lock must exclude the reference host-local, which flock(2)s `<dir>/lock`. util-linux's flock(1)
 * takes the same kind of lock, so it stands in for the reference here (the integration tests race the
 * real binary).
 */

const dir = mkdtempSync(join(tmpdir(), "weft-flock-"));
const children: ChildProcess[] = [];
test.after(() => {
  for (const c of children) if (c.exitCode === null) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Whether another process could take the lock right now (flock -n fails with 1 when it is held). */
function othersCanLock(path: string): boolean {
  const r = spawnSync("flock", ["-n", "-E", "42", path, "true"]);
  assert.ok(r.status === 0 || r.status === 42, `flock -n: ${r.status} ${r.stderr}`);
  return r.status === 0;
}

test("a held lock excludes another flock(2) holder, and unlock lets it in", async () => {
  const path = join(dir, "lock");
  const lock = new FileLock(path);
  assert.ok(othersCanLock(path));
  await lock.lock();
  assert.ok(lock.held);
  // The flock(1) child that took the lock has exited; the lock lives on in our open fd.
  assert.not.ok(othersCanLock(path));
  lock.unlock();
  assert.not.ok(lock.held);
  assert.ok(othersCanLock(path));
});

test("lock() waits while another process holds the lock", async () => {
  const path = join(dir, "lock2");
  // Holder: takes the lock, says so, keeps it until its stdin closes.
  const holder = spawn("flock", ["-x", path, "sh", "-c", "echo held; read _"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  children.push(holder);
  await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));

  const events: string[] = [];
  const waiting = withFileLock(path, () => {
    events.push("weft has the lock");
  });
  await new Promise((r) => setTimeout(r, 300));
  events.push("holder releases");
  holder.stdin!.end();
  await waiting;
  assert.equal(events, ["holder releases", "weft has the lock"]);
  assert.ok(othersCanLock(path));
});

test("two weft lock holders exclude each other", async () => {
  const path = join(dir, "lock3");
  const order: string[] = [];
  const a = withFileLock(path, async () => {
    order.push("a in");
    await new Promise((r) => setTimeout(r, 200));
    order.push("a out");
  });
  await new Promise((r) => setTimeout(r, 50));
  const b = withFileLock(path, () => {
    order.push("b in");
  });
  await Promise.all([a, b]);
  assert.equal(order, ["a in", "a out", "b in"]);
});

test("withFileLock releases the lock when the body throws", async () => {
  const path = join(dir, "lock4");
  let caught: unknown;
  try {
    await withFileLock(path, () => {
      throw new Error("boom");
    });
  } catch (err) {
    caught = err;
  }
  assert.instance(caught, Error);
  assert.ok(othersCanLock(path));
});

test.run();
