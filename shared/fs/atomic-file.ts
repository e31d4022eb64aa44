import {
  close,
  closeSync,
  fchmodSync,
  fsync,
  fsyncSync,
  mkdirSync,
  open,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "../net/random.js";

export interface AtomicWriteOptions {
  /** The file's mode, applied with fchmod so the umask does not change it. */
  mode: number;
  /** Mode for directories created on the way (umask applies, as with MkdirAll). */
  dirMode: number;
  /**
   * false: no fsync of the file or the directory, only the temp file and the rename (readers still see
   * the old file or the whole new one). For files whose meaning ends with the boot anyway (in /run).
   */
  durable?: boolean;
}

/**
 * Replaces `path` with `data` so that a reader sees either the old file or the whole new one: write a
 * unique temp file in the same directory (a dot name, so directory scans can skip it), fsync, rename,
 * then fsync the directory so the rename survives a crash. The temp file is removed on any failure.
 */
export function writeFileAtomic(path: string, data: string | Buffer, opts: AtomicWriteOptions): void {
  if (opts.durable === false) {
    closeSync(placeFile(path, data, opts) as number);
    return;
  }
  const fd = placeFile(path, data, opts, (file) => {
    try {
      fsyncSync(file);
    } finally {
      closeSync(file);
    }
  });
  if (fd !== undefined) closeSync(fd);
  syncDir(dirname(path));
}

/**
 * writeFileAtomic with the flushes after the rename, for a caller that has other work to do before it
 * answers: the file has its name and whole content when this returns (a reader, or a process killed
 * now, sees the new file), and the promise resolves once content and name are on disk (fsync of the
 * file, then of the directory, in libuv's thread pool, off the event loop). A machine that goes down
 * before the promise resolved can leave the name on an empty file, so readers must take an empty or
 * truncated file as absent. The promise never goes unhandled: await it, or its failure is lost.
 */
export function writeFileAtomicSyncLater(
  path: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
): Promise<void> {
  const file = placeFile(path, data, opts) as number;
  const flushed = new Promise<void>((resolve, reject) =>
    fsync(file, (syncErr) => close(file, () => (syncErr ? reject(syncErr) : resolve()))),
  ).then(() => syncDirLater(dirname(path)));
  flushed.catch(() => undefined);
  return flushed;
}

/**
 * Writes `data` to a temp file next to `path` (directories made on the way), runs `beforeRename` on its
 * descriptor, renames it to `path`; removes the temp file on any failure. Returns the descriptor when
 * `beforeRename` did not take it (close it), undefined when it did.
 */
function placeFile(
  path: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
  beforeRename?: (fd: number) => void,
): number | undefined {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: opts.dirMode });
  const tmp = join(dir, tempName(basename(path)));
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", opts.mode);
    fchmodSync(fd, opts.mode);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    if (beforeRename) {
      const file = fd;
      fd = undefined;
      beforeRename(file);
    }
    renameSync(tmp, path);
    return fd;
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** syncDir in the thread pool; best effort as well. */
function syncDirLater(dir: string): Promise<void> {
  return new Promise((resolve) =>
    open(dir, "r", (openErr, fd) => {
      if (openErr) return resolve();
      fsync(fd, () => close(fd, () => resolve()));
    }),
  );
}

/** NAME_MAX of Linux file systems, in bytes. */
const NAME_MAX = 255;

/**
 * `.<name>.tmp-<random>`, with `name` cut so the temp name fits NAME_MAX whenever `name` itself does: a
 * name of 238 to 255 bytes is valid, and its save must not fail on the temp file alone.
 */
export function tempName(name: string): string {
  const suffix = `.tmp-${randomBytes(6).toString("hex")}`;
  const room = NAME_MAX - 1 - suffix.length;
  const head = [...name];
  while (Buffer.byteLength(head.join("")) > room) head.pop();
  return `.${head.join("")}${suffix}`;
}

/** fsync of a directory, so a rename or unlink in it survives a crash; best effort. */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself already happened.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
