import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { writeFileAtomic, writeFileAtomicSyncLater } from "../../shared/fs/atomic-file.js";

const t = suite("atomic file writes");
const dir = mkdtempSync(join(tmpdir(), "weft-atomic-"));
t.after(() => rmSync(dir, { recursive: true, force: true }));

t("writeFileAtomic: the whole file under its name, with its mode whatever the umask, no temp left", () => {
  const path = join(dir, "a", "f");
  writeFileAtomic(path, "one", { mode: 0o640, dirMode: 0o700 });
  writeFileAtomic(path, "two", { mode: 0o640, dirMode: 0o700 });
  assert.is(readFileSync(path, "utf8"), "two");
  assert.is(statSync(path).mode & 0o777, 0o640);
  assert.equal(readdirSync(join(dir, "a")), ["f"]);
});

t(
  "writeFileAtomic durable: false: the same file, mode and no temp left (only the fsyncs are skipped)",
  () => {
    const path = join(dir, "d", "f");
    writeFileAtomic(path, "one", { mode: 0o600, dirMode: 0o700, durable: false });
    writeFileAtomic(path, "two", { mode: 0o600, dirMode: 0o700, durable: false });
    assert.is(readFileSync(path, "utf8"), "two");
    assert.is(statSync(path).mode & 0o777, 0o600);
    assert.equal(readdirSync(join(dir, "d")), ["f"]);
  },
);

t(
  "writeFileAtomicSyncLater: in place when it returns, before its flushes; the promise resolves",
  async () => {
    const path = join(dir, "b", "f");
    const flushed = writeFileAtomicSyncLater(path, Buffer.from("saved"), { mode: 0o600, dirMode: 0o700 });
    // Synchronously visible: a reader (a DEL) or a process killed now finds the whole file.
    assert.is(readFileSync(path, "utf8"), "saved");
    assert.is(statSync(path).mode & 0o777, 0o600);
    assert.equal(readdirSync(join(dir, "b")), ["f"]);
    await flushed;
    assert.is(readFileSync(path, "utf8"), "saved");
  },
);

t("writeFileAtomicSyncLater replaces an existing file whole", async () => {
  const path = join(dir, "c");
  writeFileSync(path, "old and longer");
  await writeFileAtomicSyncLater(path, "new", { mode: 0o600, dirMode: 0o700 });
  assert.is(readFileSync(path, "utf8"), "new");
});

t("writeFileAtomicSyncLater: a path it cannot create throws at once and leaves nothing", () => {
  const file = join(dir, "plain");
  writeFileSync(file, "");
  assert.throws(
    () => writeFileAtomicSyncLater(join(file, "sub", "f"), "x", { mode: 0o600, dirMode: 0o700 }),
    (err: NodeJS.ErrnoException) => err.code === "ENOTDIR" || err.code === "EEXIST",
  );
  assert.equal(readdirSync(dir).sort(), ["a", "b", "c", "d", "plain"]);
});

t.run();
