import { readAll } from "../fs/read-all.js";
import { CniError, ErrorCode } from "./errors.js";

/** Configs with a prevResult are a few KiB; anything near this cap is a runaway writer, not a config. */
export const STDIN_LIMIT = 4 * 1024 * 1024;

/** Reads all of fd 0 synchronously (no event-loop round trips on the hot path), up to `limit` bytes. */
export function readStdin(limit = STDIN_LIMIT, fd = 0): Buffer {
  let stdin: Buffer;
  try {
    stdin = readAll(fd, limit);
  } catch (err) {
    throw new CniError(ErrorCode.IOFailure, `error reading from stdin: ${(err as Error).message}`, "", {
      cause: err,
    });
  }
  return checkStdinSize(stdin, limit);
}

function tooLarge(limit: number): CniError {
  return new CniError(ErrorCode.IOFailure, `error reading from stdin: input exceeds ${limit} bytes`);
}

/**
 * stdin someone else already read (the thin client, before weftd declined the call), held to the same
 * limit as readStdin: it read the same way (readAll, which stops past the limit), so a larger input fails
 * here with the same error.
 */
export function checkStdinSize(stdin: Buffer, limit = STDIN_LIMIT): Buffer {
  if (stdin.length > limit) throw tooLarge(limit);
  return stdin;
}
