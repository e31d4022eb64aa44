import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, type Stats, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../../shared/fs/atomic-file.js";
import { type Change, change } from "./change.js";
import { CONFLIST_NAME } from "./conflists.js";
import { isWeftExecutable, sameContent } from "./identify.js";
import {
  EXECUTABLE,
  LINK_NAMES,
  type Manifest,
  type ManifestConflist,
  manifestPath,
  mergeManifest,
  ORIG_SUFFIX,
  readManifest,
  renderManifest,
} from "./manifest.js";
import { keepOriginal, placeCopy, placeLink } from "./place.js";

/**
 * What `weft install` will change, worked out before anything is touched: a refusal (a name that is not
 * weft's, without --force) leaves everything as it was. The changes come in the order that keeps a node
 * working while they are made: directories, the kept originals, the executable, the other names, the
 * conflist (so a runtime that reads the new list finds its plugins), then the manifest.
 */
export interface InstallRequest {
  binDir: string;
  confDir: string;
  /** The weft executable to install. */
  source: string;
  /** The conflist's bytes; undefined with --skip-conf. */
  conflist?: string;
  force: boolean;
}

export interface InstallPlan {
  changes: Change[];
  /** Why install cannot go on (each a complete sentence); nothing is changed when there is one. */
  refusals: string[];
  /** Whether --force would overrule the refusals (all are names held by other programs). */
  forceWouldDo: boolean;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** The directories `mkdir -p dir` would create, outermost first. */
function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) break;
  }
  return out;
}

/** Deep equality of two JSON documents, key order ignored (a list reformatted is the same list). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameJson((a as never)[k], (b as never)[k]));
}

function parsesAs(text: string, want: string): boolean {
  try {
    return sameJson(JSON.parse(text), JSON.parse(want));
  } catch {
    return false;
  }
}

/**
 * `<name>.orig` for a foreign file that --force replaces: made unless one with the same content is
 * already there; one that differs is never overwritten (it may be the only copy of the operator's
 * original binary), which is a refusal.
 */
function original(path: string, st: Stats, changes: Change[], refusals: string[]): boolean {
  const orig = `${path}${ORIG_SUFFIX}`;
  const o = lstatOrUndefined(orig);
  if (o) {
    const same = st.isSymbolicLink()
      ? o.isSymbolicLink() && readlinkSync(orig) === readlinkSync(path)
      : o.isFile() && sameContent(orig, path);
    if (same) return true;
    refusals.push(
      `${orig} already exists and differs from ${path}: install keeps the file it replaces as ` +
        `${orig} and does not overwrite an earlier one; move one of them away and run install again`,
    );
    return false;
  }
  changes.push(
    change({ planned: "keep", done: "kept" }, `${path} as ${basename(orig)}`, () => keepOriginal(path, orig)),
  );
  return true;
}

const FOREIGN = (path: string) =>
  `${path} is not weft (another program, such as the reference plugin, is installed under that name)`;
/** Said once after the refusals that --force would overrule. */
export const FORCE_HINT =
  "run install with --force to replace them: each replaced file is kept as <name>.orig, and " +
  "'weft uninstall --restore' puts them back";

export function planInstall(req: InstallRequest): InstallPlan {
  const changes: Change[] = [];
  const refusals: string[] = [];
  /** Names held by other programs, without --force. */
  const foreign: string[] = [];
  const previous = readManifest(req.binDir)?.manifest;
  const createdDirs: string[] = [];

  for (const dir of [req.binDir, ...(req.conflist !== undefined ? [req.confDir] : [])]) {
    const missing = missingDirs(dir);
    if (missing.length === 0) continue;
    createdDirs.push(...missing);
    changes.push(
      change({ planned: "create", done: "created" }, `directory ${dir}`, () => {
        mkdirSync(dir, { recursive: true, mode: 0o755 });
      }),
    );
  }

  // The executable: copied when missing or different from the source.
  const exe = join(req.binDir, EXECUTABLE);
  const exeSt = lstatOrUndefined(exe);
  const originals: string[] = [];
  let replaceExe = false;
  const srcSize = statSync(req.source).size;
  const copyWhat = `${exe} (a copy of ${req.source}, ${MiB(srcSize)})`;
  if (!exeSt) {
    replaceExe = true;
    changes.push(
      change({ planned: "install", done: "installed" }, copyWhat, () => placeCopy(req.source, exe)),
    );
  } else if (exeSt.isDirectory()) {
    refusals.push(`${exe} is a directory`);
  } else if (isWeftExecutable(exe)) {
    if (exeSt.isSymbolicLink() || !sameContent(req.source, exe)) {
      replaceExe = true;
      changes.push(
        change({ planned: "upgrade", done: "upgraded" }, copyWhat, () => placeCopy(req.source, exe)),
      );
    }
  } else if (!req.force) {
    foreign.push(FOREIGN(exe));
  } else if (original(exe, exeSt, changes, refusals)) {
    replaceExe = true;
    originals.push(EXECUTABLE);
    changes.push(
      change({ planned: "replace", done: "replaced" }, copyWhat, () => placeCopy(req.source, exe)),
    );
  }

  // The other names: a hard link to the executable (a symlink where the filesystem refuses).
  const links: string[] = [];
  const exeIno = exeSt && !exeSt.isSymbolicLink() ? exeSt.ino : undefined;
  for (const name of LINK_NAMES) {
    const path = join(req.binDir, name);
    const st = lstatOrUndefined(path);
    const link = (verb: { planned: string; done: string }) =>
      change(verb, `${path} -> ${EXECUTABLE}`, () => placeLink(req.binDir, EXECUTABLE, name));
    links.push(name);
    if (!st) {
      changes.push(link({ planned: "link", done: "linked" }));
      continue;
    }
    if (st.isDirectory()) {
      refusals.push(`${path} is a directory`);
      continue;
    }
    const symlinkToExe = st.isSymbolicLink() && readlinkSync(path) === EXECUTABLE;
    const hardlinkToExe = !st.isSymbolicLink() && exeIno !== undefined && st.ino === exeIno && !replaceExe;
    if (symlinkToExe || hardlinkToExe) continue;
    if (isWeftExecutable(path)) {
      // Another weft (an earlier build, or a link to the executable being replaced): relinked as is.
      changes.push(link({ planned: "relink", done: "relinked" }));
      continue;
    }
    if (!req.force) {
      foreign.push(FOREIGN(path));
      continue;
    }
    if (original(path, st, changes, refusals)) {
      originals.push(name);
      changes.push(link({ planned: "replace", done: "replaced" }));
    }
  }

  const conflist =
    req.conflist !== undefined ? planConflist(req, previous, changes, refusals, foreign) : undefined;

  // The manifest, rewritten only when it changes (a second install touches nothing).
  const path = manifestPath(req.binDir);
  const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  const next = renderManifest(
    mergeManifest(previous, {
      executable: EXECUTABLE,
      links,
      originals,
      ...(conflist ? { conflist } : {}),
      createdDirs,
    }),
  );
  if (changes.length > 0 || next !== current) {
    changes.push(
      change({ planned: "record", done: "recorded" }, `what was installed in ${path}`, () => {
        writeFileAtomic(path, next, { mode: 0o644, dirMode: 0o755 });
      }),
    );
  }
  return {
    changes,
    refusals: [...foreign, ...refusals],
    forceWouldDo: foreign.length > 0 && refusals.length === 0,
  };
}

/** The conflist: written when missing or different; returns its manifest entry when it is weft's. */
function planConflist(
  req: InstallRequest,
  previous: Manifest | undefined,
  changes: Change[],
  refusals: string[],
  foreign: string[],
): ManifestConflist | undefined {
  const text = req.conflist!;
  const path = join(req.confDir, CONFLIST_NAME);
  const st = lstatOrUndefined(path);
  const entry = (original: boolean): ManifestConflist => ({ path, sha256: sha256(text), original });
  const write = () => writeFileAtomic(path, text, { mode: 0o644, dirMode: 0o755 });
  const ours = previous?.conflist?.path === path ? previous.conflist : undefined;
  if (!st) {
    changes.push(change({ planned: "write", done: "wrote" }, path, write));
    return entry(false);
  }
  if (st.isDirectory()) {
    refusals.push(`${path} is a directory`);
    return undefined;
  }
  const have = readFileSync(path);
  if (have.equals(Buffer.from(text)) || parsesAs(have.toString("utf8"), text)) {
    // Already this list (written by an earlier install, or the same list put there by someone else,
    // such as flannel's own: then it is not weft's to remove).
    return ours && ours.sha256 === sha256(have) ? ours : undefined;
  }
  if (ours && ours.sha256 === sha256(have)) {
    changes.push(change({ planned: "update", done: "updated" }, path, write));
    return entry(ours.original);
  }
  if (!req.force) {
    foreign.push(`${path} holds another network list (--skip-conf leaves it alone)`);
    return undefined;
  }
  if (!original(path, st, changes, refusals)) return undefined;
  changes.push(change({ planned: "replace", done: "replaced" }, path, write));
  return entry(true);
}
