import { spawn } from "node:child_process";
import { closeSync, constants, existsSync, openSync } from "node:fs";
import { goFileError } from "../fs/go-errors.js";

/**
 * An exclusive flock(2) on a file, compatible with the reference host-local, which locks `<dir>/lock`
 * through go-filemutex (open O_CREAT|O_RDONLY 0750, then flock LOCK_EX).
 *
 * Node has no flock and weft takes no native addons, so util-linux's flock(1) takes the lock for us: we
 * open the file ourselves and hand that open file to `flock -x 3` as its fd 3. A flock belongs to the open
 * file description, not to the process, so when the child exits the lock stays held through our still-open
 * fd; closing that fd releases it (the kernel also releases it if we die). This needs an inherited fd,
 * which shared/net/run.ts (stdin/stdout/stderr only) does not offer, hence a spawn of its own here.
 */
export class FileLock {
  private fd: number | undefined;

  constructor(readonly path: string) {}

  /**
   * Blocks until the lock is ours, like LOCK_EX without LOCK_NB; with `timeoutSeconds`, gives up after
   * that long (flock -w) with an error, for a caller that must not hang behind a stuck holder.
   */
  async lock(timeoutSeconds?: number): Promise<void> {
    if (this.fd !== undefined) throw new Error(`lock ${this.path} already held`);
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_CREAT | constants.O_RDONLY, 0o750);
    } catch (err) {
      throw goFileError(err, this.path);
    }
    try {
      const wait = timeoutSeconds === undefined ? [] : ["-w", String(timeoutSeconds)];
      await flockChild(fd, [...wait, "-x", "3"], this.path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  /** Closing our (now only) reference to the open file description drops the flock. */
  unlock(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  get held(): boolean {
    return this.fd !== undefined;
  }
}

/** Runs `fn` holding the lock on `path`, releasing it whatever happens. */
export async function withFileLock<T>(
  path: string,
  fn: () => Promise<T> | T,
  timeoutSeconds?: number,
): Promise<T> {
  const lock = new FileLock(path);
  await lock.lock(timeoutSeconds);
  try {
    return await fn();
  } finally {
    lock.unlock();
  }
}

// util-linux installs flock(1) in /usr/bin (merged /usr) or /bin; a runtime may call plugins with a
// minimal PATH, so look there first and fall back to PATH.
const FLOCK_PATHS = ["/usr/bin/flock", "/bin/flock", "/usr/local/bin/flock"];
let flockPath: string | undefined;

function flockBinary(): string {
  flockPath ??= FLOCK_PATHS.find((p) => existsSync(p)) ?? "flock";
  return flockPath;
}

function flockChild(fd: number, args: string[], path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(flockBinary(), args, {
      stdio: ["ignore", "ignore", "pipe", fd],
      env: { PATH: process.env.PATH || "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", (err) => {
      const why =
        (err as NodeJS.ErrnoException).code === "ENOENT" ? "flock(1) from util-linux not found" : err.message;
      reject(new Error(`failed to lock ${path}: ${why}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`failed to lock ${path}: flock exited ${signal ?? code}: ${stderr.trim()}`));
    });
  });
}
