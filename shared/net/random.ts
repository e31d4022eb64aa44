import { closeSync, openSync, readSync } from "node:fs";

/**
 * Random bytes from the kernel's generator (/dev/urandom, what Go's crypto/rand falls back to), for
 * interface names, MACs and temp file names. Not node:crypto: loading it (and the stream modules it
 * pulls in) costs ~5 ms of every ADD and DEL, for a few bytes.
 */
export function randomBytes(size: number): Buffer {
  const buf = Buffer.alloc(size);
  const fd = openSync("/dev/urandom", "r");
  try {
    let off = 0;
    while (off < size) off += readSync(fd, buf, off, size - off, null);
  } finally {
    closeSync(fd);
  }
  return buf;
}
