import { statfsSync } from "node:fs";

/**
 * Network namespace paths (/proc/<pid>/ns/net, /var/run/netns/<name>). Commands enter one with nsenter
 * (run.ts `netns`), so this module only judges a path the way the reference's ns.GetNS does: it must
 * exist and live on nsfs.
 */
const NSFS_MAGIC = 0x6e736673;
const PROCFS_MAGIC = 0x9fa0;

export class NetnsPathError extends Error {
  constructor(
    message: string,
    /** True when the path does not exist (the pod is gone), as ns.NSPathNotExistErr. */
    readonly notExist: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "NetnsPathError";
  }
}

/** Throws NetnsPathError with the reference's wording unless `path` is a network namespace. */
export function checkNetnsPath(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === "ENOENT" ? "no such file or directory" : (e.message ?? String(err));
    throw new NetnsPathError(`failed to Statfs ${JSON.stringify(path)}: ${reason}`, e.code === "ENOENT", {
      cause: err,
    });
  }
  // Older kernels show /proc/<pid>/ns/* on procfs; the reference accepts both.
  if (type !== NSFS_MAGIC && type !== PROCFS_MAGIC) {
    throw new NetnsPathError(`unknown FS magic on ${JSON.stringify(path)}: ${type.toString(16)}`, false);
  }
}

/**
 * Whether `path` does not name a namespace (any more): it is missing, or it is no nsfs file, such as the
 * empty file a runtime's bind mount leaves behind once the namespace is gone. DEL then skips the in-pod
 * work but still releases everything else (complaint 6.7).
 */
export function netnsGone(path: string): boolean {
  try {
    checkNetnsPath(path);
    return false;
  } catch (err) {
    return err instanceof NetnsPathError;
  }
}
