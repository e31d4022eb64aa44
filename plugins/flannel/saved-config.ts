import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSyncLater } from "../../shared/fs/atomic-file.js";
import { goFileError } from "../../shared/fs/go-errors.js";

/**
 * The delegate configs flannel saves at ADD so DEL can replay them: `<dataDir>/<containerID>`, the exact
 * bytes sent to the delegate, mode 0600 in a 0700 directory (the reference's layout, so either
 * implementation can tear down the other's pods).
 */
export const DEFAULT_DATA_DIR = "/var/lib/cni/flannel";

export function savedConfigPath(dataDir: string, containerId: string): string {
  return join(dataDir, containerId);
}

/** NAME_MAX: the longest file name, so the longest container ID a saved config can be named by. */
export const MAX_CONTAINER_ID_BYTES = 255;

/** No file can exist under this path: nothing there, or a name the file system cannot hold. */
function absent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG";
}

/**
 * Saves atomically (temp + rename): the reference truncates in place, so a crash could leave the
 * truncated file that once made DEL fail forever (flannel-io/flannel#1662). The file is in place when
 * this returns; the promise resolves once it is on disk (fsyncs in the thread pool), so the ADD runs its
 * delegate meanwhile and answers only after both (measured: ~6 ms of a served flannel ADD were these
 * fsyncs on the event loop). Should the machine go down before they end, DEL takes the empty file it
 * may find as unreadable and rebuilds the config from subnet.env.
 */
export function saveDelegateConfig(dataDir: string, containerId: string, bytes: Buffer): Promise<void> {
  const path = savedConfigPath(dataDir, containerId);
  let flushed: Promise<void>;
  try {
    flushed = writeFileAtomicSyncLater(path, bytes, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw goFileError(err, path);
  }
  return flushed.catch((err: unknown) => {
    throw goFileError(err, path);
  });
}

/**
 * The saved bytes, or undefined when there is no file (never added, already deleted, or an ID too long
 * to be a file name, which no ADD could have saved).
 */
export function readSavedConfig(dataDir: string, containerId: string): Buffer | undefined {
  try {
    return readFileSync(savedConfigPath(dataDir, containerId));
  } catch (err) {
    if (absent(err)) return undefined;
    throw goFileError(err, savedConfigPath(dataDir, containerId));
  }
}

/** Removes the saved config; one already gone is fine. (unlink, not rmSync: that loads its rimraf.) */
export function removeSavedConfig(dataDir: string, containerId: string): void {
  try {
    unlinkSync(savedConfigPath(dataDir, containerId));
  } catch (err) {
    if (!absent(err)) throw goFileError(err, savedConfigPath(dataDir, containerId), "remove");
  }
}

/** Container IDs with a saved config (temp files of an interrupted save start with "." and are skipped). */
export function listSavedContainerIds(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.startsWith("."))
      .map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw goFileError(err, dataDir);
  }
}

/** A saved config that can be replayed: a JSON object naming its plugin type. */
export interface ParsedSavedConfig {
  doc: Record<string, unknown> & { type: string };
}

/** Parses saved bytes; undefined when they are not a usable config (truncated, empty, no type). */
export function parseSavedConfig(bytes: Buffer): ParsedSavedConfig | undefined {
  try {
    const doc = JSON.parse(bytes.toString("utf8")) as unknown;
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) return undefined;
    const type = (doc as { type?: unknown }).type;
    if (typeof type !== "string" || type === "") return undefined;
    return { doc: doc as ParsedSavedConfig["doc"] };
  } catch {
    return undefined;
  }
}
