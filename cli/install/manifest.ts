import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * What `weft install` wrote, kept in `<bin-dir>/.weft-install.json` so `weft uninstall` removes exactly
 * that and nothing else: the executable, the names that point at it, the names whose previous
 * file was kept as `<name>.orig`, the conflist with the hash of the bytes written (an edited conflist is
 * the operator's and stays), and the directories install created. Written only when it changes, so a
 * second install leaves the bin dir untouched.
 */
export const MANIFEST_NAME = ".weft-install.json";
/** The executable's own name in the bin dir; every other name is a link to it. */
export const EXECUTABLE = "weft";
/** The other names, as the build makes them (scripts/build.mjs). */
export const LINK_NAMES = ["flannel", "bridge", "host-local", "portmap", "weftd"] as const;
export const ALL_NAMES = [EXECUTABLE, ...LINK_NAMES] as const;
export const ORIG_SUFFIX = ".orig";

export interface ManifestConflist {
  path: string;
  sha256: string;
  /** Whether install kept the file it replaced as `<path>.orig`. */
  original: boolean;
}

export interface Manifest {
  executable: string;
  /** The other names (hard links or symlinks to the executable: uninstall looks at what is there). */
  links: string[];
  /** Names whose previous file install kept as `<name>.orig`, sorted. */
  originals: string[];
  conflist?: ManifestConflist;
  /** Directories install created, outermost first (uninstall removes them when empty). */
  createdDirs: string[];
}

export const manifestPath = (binDir: string) => join(binDir, MANIFEST_NAME);

export function renderManifest(m: Manifest): string {
  const doc = {
    executable: m.executable,
    links: [...m.links].sort(),
    originals: [...m.originals].sort(),
    ...(m.conflist ? { conflist: m.conflist } : {}),
    createdDirs: m.createdDirs,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Parses a manifest; throws naming what is wrong (a hand-edited or foreign file is not guessed at). */
export function parseManifest(text: string): Manifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string) => new Error(`"${what}" is missing or malformed`);
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a JSON object");
  if (doc.executable !== EXECUTABLE) throw bad("executable");
  if (!isStringList(doc.links) || !doc.links.every((n) => (LINK_NAMES as readonly string[]).includes(n)))
    throw bad("links");
  if (
    !isStringList(doc.originals) ||
    !doc.originals.every((n) => (ALL_NAMES as readonly string[]).includes(n))
  )
    throw bad("originals");
  if (!isStringList(doc.createdDirs)) throw bad("createdDirs");
  let conflist: ManifestConflist | undefined;
  if (doc.conflist !== undefined) {
    const c = doc.conflist as Record<string, unknown>;
    if (
      !c ||
      typeof c.path !== "string" ||
      typeof c.sha256 !== "string" ||
      !/^[0-9a-f]{64}$/.test(c.sha256) ||
      typeof c.original !== "boolean"
    )
      throw bad("conflist");
    conflist = { path: c.path, sha256: c.sha256, original: c.original };
  }
  return {
    executable: EXECUTABLE,
    links: doc.links,
    originals: doc.originals,
    ...(conflist ? { conflist } : {}),
    createdDirs: doc.createdDirs,
  };
}

/** The manifest of `binDir` with its text, or undefined when there is none; throws when unreadable. */
export function readManifest(binDir: string): { manifest: Manifest; text: string } | undefined {
  const path = manifestPath(binDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { manifest: parseManifest(text), text };
  } catch (err) {
    throw new Error(`${path} is not weft's install manifest: ${(err as Error).message}`, { cause: err });
  }
}

/** This run's manifest on top of the previous one: what an earlier run wrote and this one kept stays. */
export function mergeManifest(previous: Manifest | undefined, next: Manifest): Manifest {
  if (!previous) return next;
  return {
    executable: EXECUTABLE,
    links: [...new Set([...previous.links, ...next.links])].sort(),
    originals: [...new Set([...previous.originals, ...next.originals])].sort(),
    ...((next.conflist ?? previous.conflist) ? { conflist: next.conflist ?? previous.conflist } : {}),
    createdDirs: [...new Set([...previous.createdDirs, ...next.createdDirs])],
  };
}
