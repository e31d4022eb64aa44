import { readSync } from "node:fs";
import { CniError, ErrorCode } from "./errors.js";

/** Configs with a prevResult are a few KiB; anything near this cap is a runaway writer, not a config. */
export const STDIN_LIMIT = 4 * 1024 * 1024;

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Reads all of fd 0 synchronously (no event-loop round trips on the hot path), up to `limit` bytes. */
export function readStdin(limit = STDIN_LIMIT, fd = 0): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
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
      throw new CniError(ErrorCode.IOFailure, `error reading from stdin: ${(err as Error).message}`, "", {
        cause: err,
      });
    }
    if (n === 0) break;
    total += n;
    if (total > limit) throw tooLarge(limit);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(limit: number): CniError {
  return new CniError(ErrorCode.IOFailure, `error reading from stdin: input exceeds ${limit} bytes`);
}

/**
 * stdin someone else already read (the thin client, before weftd declined the call), held to the same
 * limit as readStdin: it read at most one byte more, so a larger input fails here with the same error.
 */
export function checkStdinSize(stdin: Buffer, limit = STDIN_LIMIT): Buffer {
  if (stdin.length > limit) throw tooLarge(limit);
  return stdin;
}
