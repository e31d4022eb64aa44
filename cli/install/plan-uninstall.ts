import { createHash } from "node:crypto";
import { lstatSync, readFileSync, readlinkSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { type Change, change } from "./change.js";
import { CONFLIST_NAME } from "./conflists.js";
import { isWeftExecutable } from "./identify.js";
import { ALL_NAMES, EXECUTABLE, type Manifest, manifestPath, ORIG_SUFFIX, readManifest } from "./manifest.js";
import { removeEntry, restoreOriginal } from "./place.js";

/**
 * What `weft uninstall` will change: the names the manifest lists that are still weft (one an operator
 * has replaced since is theirs and stays), the conflist if it still holds the bytes install wrote, the
 * manifest, and the directories install created once they are empty. With --restore, each `<name>.orig`
 * goes back in one rename (no moment without a plugin under that name); without the manifest (lost, or
 * an earlier uninstall without --restore), --restore still puts back every `.orig` next to a missing or
 * weft name.
 */
export interface UninstallRequest {
  binDir: string;
  confDir: string;
  restore: boolean;
}

export interface UninstallPlan {
  changes: Change[];
  /** Things left in place on purpose, said on stderr. */
  notes: string[];
  manifest: Manifest | undefined;
}

const exists = (path: string) => {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

/** A name of weft's: a symlink to the executable, or a weft executable (the file or a hard link to it). */
function isWeftName(path: string): boolean {
  try {
    if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === EXECUTABLE) return true;
  } catch {
    return false;
  }
  return isWeftExecutable(path);
}

const REMOVE = { planned: "remove", done: "removed" };
const RESTORE = { planned: "restore", done: "restored" };

function removeOrRestore(path: string, restore: boolean, changes: Change[], notes: string[]): void {
  const orig = `${path}${ORIG_SUFFIX}`;
  if (exists(orig)) {
    if (restore) {
      changes.push(change(RESTORE, `${path} from ${orig}`, () => restoreOriginal(orig, path)));
      return;
    }
    notes.push(`kept ${orig} (the file install replaced; 'weft uninstall --restore' puts it back)`);
  }
  changes.push(change(REMOVE, path, () => removeEntry(path)));
}

export function planUninstall(req: UninstallRequest): UninstallPlan {
  const changes: Change[] = [];
  const notes: string[] = [];
  const manifest = readManifest(req.binDir)?.manifest;

  if (!manifest) {
    if (req.restore) restoreWithoutManifest(req, changes);
    return { changes, notes, manifest };
  }

  // The names first, the executable last: while any name is left it still points at a whole file.
  const names = [...manifest.links.filter((n) => n !== EXECUTABLE), EXECUTABLE];
  for (const name of names) {
    const path = join(req.binDir, name);
    if (!exists(path)) continue;
    if (!isWeftName(path)) {
      notes.push(`left ${path}: it is no longer weft (replaced since install)`);
      continue;
    }
    removeOrRestore(path, req.restore, changes, notes);
  }

  const c = manifest.conflist;
  if (c && exists(c.path)) {
    const sha = createHash("sha256").update(readFileSync(c.path)).digest("hex");
    if (sha === c.sha256) removeOrRestore(c.path, req.restore, changes, notes);
    else notes.push(`left ${c.path}: it changed since install wrote it`);
  }

  changes.push(change(REMOVE, manifestPath(req.binDir), () => removeEntry(manifestPath(req.binDir))));
  for (const dir of [...manifest.createdDirs].reverse()) {
    changes.push({
      planned: `would remove directory ${dir} if empty`,
      done: `removed directory ${dir}`,
      apply: () => {
        try {
          rmdirSync(dir);
          return true;
        } catch (err) {
          // Something else lives there now (another list, a file of the operator's): it stays.
          if (["ENOTEMPTY", "EEXIST", "ENOENT"].includes((err as NodeJS.ErrnoException).code ?? ""))
            return false;
          throw err;
        }
      },
    });
  }
  return { changes, notes, manifest };
}

/** --restore with no manifest: every `<name>.orig` whose name is missing or weft goes back. */
function restoreWithoutManifest(req: UninstallRequest, changes: Change[]): void {
  const paths = [...ALL_NAMES.map((n) => join(req.binDir, n)), join(req.confDir, CONFLIST_NAME)];
  for (const path of paths) {
    const orig = `${path}${ORIG_SUFFIX}`;
    if (!exists(orig)) continue;
    const isConflist = path.endsWith(CONFLIST_NAME);
    if (exists(path) && !isConflist && !isWeftName(path)) continue;
    changes.push(change(RESTORE, `${path} from ${orig}`, () => restoreOriginal(orig, path)));
  }
}
