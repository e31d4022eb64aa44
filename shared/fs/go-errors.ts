/**
 * Node reports file errors as "ENOENT: no such file or directory, open '/x'"; the reference (Go's
 * *PathError) says "open /x: no such file or directory". Users grep for the latter, so file errors that
 * reach a CNI error message are worded the Go way: the errno texts of Go's syscall table for the errors a
 * file path can meet, libuv's description for any other.
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
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EMFILE: "too many open files",
  ENFILE: "too many open files in system",
  EBUSY: "device or resource busy",
  EINVAL: "invalid argument",
  ENOTEMPTY: "directory not empty",
  EXDEV: "invalid cross-device link",
  ETXTBSY: "text file busy",
  EFBIG: "file too large",
  EAGAIN: "resource temporarily unavailable",
};

/** "ECODE: description, syscall 'path'" -> "description"; anything else as it is. */
function libuvDescription(message: string): string {
  return /^E[A-Z0-9]+: (.*?), \w+( '.*')?$/s.exec(message)?.[1] ?? message;
}

export function goFileError(err: unknown, path: string, op = "open"): Error {
  const e = err as NodeJS.ErrnoException;
  // Node refuses a path with a NUL byte before any syscall; the kernel (and so Go) says EINVAL.
  const nul = e.code === "ERR_INVALID_ARG_VALUE";
  const reason = nul
    ? STRERROR.EINVAL
    : ((e.code && STRERROR[e.code]) ?? libuvDescription(e.message ?? String(err)));
  // EISDIR surfaces on read, not open, in Go.
  const verb = e.code === "EISDIR" ? "read" : op;
  return new Error(`${verb} ${path}: ${reason}`, { cause: err });
}
