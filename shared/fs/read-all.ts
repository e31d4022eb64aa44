import { readSync } from "node:fs";

/**
 * Reads `fd` synchronously (no event-loop round trips on the hot path) to its end, or until it holds more
 * than `limit` bytes: it stops at the read that passes the limit (at most one 64 KiB read past it), so a
 * runaway writer is not read further, and the caller tells "too large" by the length. A non-blocking
 * pipe with nothing yet (EAGAIN) is waited on; EOF and EBADF (no stdin) end the input; other errors are
 * thrown as they are. Used for a plugin's stdin by skel and by the thin client, which loads nothing but
 * Node's own modules: keep this module's imports to node:fs.
 */
export function readAll(fd: number, limit: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  while (total <= limit) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A non-blocking pipe with nothing yet; wait a little rather than spin.
      if (code === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      if (code === "EOF" || code === "EBADF") break;
      throw err;
    }
    if (n === 0) break;
    total += n;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
