import { spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readAll } from "../../shared/fs/read-all.js";

const t = suite("readAll");
const dir = mkdtempSync(join(tmpdir(), "weft-read-all-"));
t.after(() => rmSync(dir, { recursive: true, force: true }));

function withFile<T>(bytes: number, fn: (fd: number) => T): T {
  const path = join(dir, `f-${bytes}`);
  writeFileSync(path, Buffer.alloc(bytes, 0x61));
  const fd = openSync(path, "r");
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

t("the whole input, up to and at the limit", () => {
  assert.is(withFile(200_000, (fd) => readAll(fd, 1 << 20)).length, 200_000);
  assert.is(withFile(100_000, (fd) => readAll(fd, 100_000)).length, 100_000);
  assert.is(withFile(0, (fd) => readAll(fd, 10)).length, 0);
});

t("over the limit: stops at the read that passes it and leaves the rest unread", () => {
  withFile(1 << 20, (fd) => {
    const got = readAll(fd, 100_000);
    assert.ok(got.length > 100_000 && got.length <= 100_000 + 64 * 1024, `read ${got.length}`);
    // The rest is still there to read: the reading stopped.
    assert.is(readSync(fd, Buffer.alloc(1 << 20)), (1 << 20) - got.length);
  });
});

t("no stdin (EBADF) is an empty input; another error is thrown as it is", () => {
  const fd = openSync(dir, "r");
  try {
    assert.throws(
      () => readAll(fd, 10),
      (err: NodeJS.ErrnoException) => err.code === "EISDIR",
    );
  } finally {
    closeSync(fd);
  }
  // Closed just now, and nothing opened since: not a descriptor.
  assert.is(readAll(fd, 10).length, 0);
});

t("a non-blocking pipe with nothing yet (EAGAIN) is waited on until its end", () => {
  const fifo = join(dir, "fifo");
  const mk = spawn("mkfifo", [fifo]);
  return new Promise<void>((res) => mk.on("close", res)).then(async () => {
    const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const w = openSync(fifo, constants.O_WRONLY);
    const writer = spawn("sh", ["-c", "sleep 0.2; printf abc; sleep 0.2; printf def"], {
      stdio: ["ignore", w, "inherit"],
    });
    const done = new Promise((res) => writer.on("close", res));
    closeSync(w);
    try {
      assert.is(readAll(r, 100).toString(), "abcdef");
    } finally {
      closeSync(r);
      await done;
    }
  });
});

t.run();
