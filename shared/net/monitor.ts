import { type ChildProcess, spawn } from "node:child_process";

/**
 * Kernel change events from netlink, through one long-lived `ip -o monitor` (iproute2 prints one line per
 * RTM_NEWxxx or RTM_DELxxx message; deletions start with "Deleted"). A daemon uses it to repair what an operator
 * or another program deletes (a route, a device, a neighbour) at once, instead of at the next periodic
 * check; the periodic check stays as the safety net, since a monitor can miss messages when the socket
 * overflows. The process is restarted with a growing pause if it ends.
 */
export type MonitorObject = "link" | "route" | "neigh" | "address";

export interface KernelMonitor {
  stop(): void;
}

export function monitorKernel(
  objects: MonitorObject[],
  onLine: (line: string) => void,
  onError: (err: Error) => void = () => undefined,
): KernelMonitor {
  let child: ChildProcess | undefined;
  let stopped = false;
  let pause = 100;
  let restart: NodeJS.Timeout | undefined;

  const start = () => {
    if (stopped) return;
    const started = Date.now();
    const p = spawn("ip", ["-o", "monitor", ...objects], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C" },
    });
    child = p;
    let rest = "";
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line !== "") onLine(line);
    });
    let stderr = "";
    p.stderr.setEncoding("utf8");
    p.stderr.on("data", (d: string) => {
      stderr += d;
    });
    p.on("error", (err) => onError(new Error(`ip monitor: ${err.message}`, { cause: err })));
    p.on("close", (code) => {
      child = undefined;
      if (stopped) return;
      onError(new Error(`ip monitor ended (exit ${code}): ${stderr.trim() || "no message"}; restarting`));
      // A monitor that ran for a while restarts at once; one that keeps dying backs off to 30 s.
      pause = Date.now() - started > 10_000 ? 100 : Math.min(pause * 2, 30_000);
      restart = setTimeout(start, pause);
      restart.unref();
    });
    // The monitor must never keep a stopping daemon alive.
    p.unref();
    (p.stdout as unknown as { unref?: () => void }).unref?.();
    (p.stderr as unknown as { unref?: () => void }).unref?.();
  };

  start();
  return {
    stop() {
      stopped = true;
      clearTimeout(restart);
      child?.kill();
    },
  };
}
