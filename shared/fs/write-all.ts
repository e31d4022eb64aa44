import { writeSync } from "node:fs";

/**
 * Writes all of `text` to `fd` synchronously, retrying on EAGAIN (a non-blocking pipe that is full).
 * Used for a plugin's stdout by the process entry point and by the thin client, which loads nothing but
 * Node's own modules: keep this module's imports to node:fs.
 */
export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
}
