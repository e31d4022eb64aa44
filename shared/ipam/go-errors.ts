/**
 * Node reports file errors as "ENOENT: no such file or directory, open '/x'"; the reference (Go's
 * *PathError) says "open /x: no such file or directory". Users grep for the latter, so file errors that
 * reach a CNI error message are worded the Go way.
 */
const STRERROR: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EEXIST: "file exists",
  EIO: "input/output error",
  EDQUOT: "disk quota exceeded",
};

export function goFileError(err: unknown, path: string, op = "open"): Error {
  const e = err as NodeJS.ErrnoException;
  const reason = (e.code && STRERROR[e.code]) ?? e.message;
  // EISDIR surfaces on read, not open, in Go.
  const verb = e.code === "EISDIR" ? "read" : op;
  return new Error(`${verb} ${path}: ${reason}`, { cause: err });
}
