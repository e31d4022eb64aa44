import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { syncDir, tempName } from "../../shared/fs/atomic-file.js";

/**
 * How install puts a file in a bin dir that a runtime may be executing from at that very moment: the
 * new file is made complete under a temp name in the same directory (written and fsynced, or linked),
 * then renamed over the name, and the directory is fsynced. A runtime's execve sees the old file or the
 * new one, never a partial one, and the old inode is never opened for writing: flannel's init container
 * does `cp -f`, which rewrites the running plugin in place ("text file busy", "exec format error").
 */

/** Runs `make(tmp)` to create the entry at a temp name next to `dest`, then renames it over `dest`. */
function viaTemp(dest: string, make: (tmp: string) => void): void {
  const tmp = join(dirname(dest), tempName(basename(dest)));
  try {
    make(tmp);
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dirname(dest));
}

/** Copies `src` to `dest` as an executable (0755), atomically. */
export function placeCopy(src: string, dest: string): void {
  viaTemp(dest, (tmp) => {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
    chmodSync(tmp, 0o755);
    const fd = openSync(tmp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * Errors of link(2) that mean "this filesystem or this file takes no hard link here": a different
 * mount (a bind-mounted bin dir), a filesystem without hard links (EPERM on vfat-like ones, also for an
 * immutable file), too many links. A symlink does the job then.
 */
const LINK_REFUSED = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS"]);

export type LinkKind = "hardlink" | "symlink";

/**
 * Makes `dir/name` another name of `dir/target`: a hard link, or a relative symlink (`target`, so the
 * directory can be moved or mounted elsewhere) where link(2) is refused. Atomic like placeCopy.
 */
export function placeLink(dir: string, target: string, name: string): LinkKind {
  let kind: LinkKind = "hardlink";
  viaTemp(join(dir, name), (tmp) => {
    try {
      linkSync(join(dir, target), tmp);
    } catch (err) {
      if (!LINK_REFUSED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
      symlinkSync(target, tmp);
      kind = "symlink";
    }
  });
  return kind;
}

/**
 * Keeps what is at `path` as `origPath` (a second name for the same file, a copy of a symlink, or a copy
 * where no link can be made) before install replaces it; `path` itself is not touched.
 */
export function keepOriginal(path: string, origPath: string): void {
  const st = lstatSync(path);
  viaTemp(origPath, (tmp) => {
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(path), tmp);
      return;
    }
    try {
      linkSync(path, tmp);
    } catch (err) {
      if (!LINK_REFUSED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
      copyFileSync(path, tmp, constants.COPYFILE_EXCL); // keeps the mode
    }
  });
}

/** Puts `origPath` back as `path`, replacing what is there in one rename. */
export function restoreOriginal(origPath: string, path: string): void {
  renameSync(origPath, path);
  syncDir(dirname(path));
}

/** Removes one directory entry (never a directory). */
export function removeEntry(path: string): void {
  unlinkSync(path);
  syncDir(dirname(path));
}
