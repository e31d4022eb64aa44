import { type SpawnOptions, spawn } from "node:child_process";

/** What a child process printed and how it ended. */
export interface AsyncRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a process without blocking this one's event loop (for children that talk to a server this test
 * process runs, or that run side by side) and collects its output. `input` is written to its stdin (else
 * stdin is /dev/null); with `timeoutMs` a hung child is killed (SIGKILL) so the test fails instead of
 * hanging the suite. Rejects only when the process cannot be started.
 */
export function spawnAsync(
  file: string,
  args: string[],
  o: Pick<SpawnOptions, "env" | "cwd"> & { input?: string; timeoutMs?: number } = {},
): Promise<AsyncRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...(o.env ? { env: o.env } : {}),
      ...(o.cwd ? { cwd: o.cwd } : {}),
      stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = o.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), o.timeoutMs) : undefined;
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    if (o.input !== undefined) child.stdin!.end(o.input);
  });
}
