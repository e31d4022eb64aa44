import { execFileSync } from "node:child_process";
import { stopDaemonIn } from "./fastpath.js";
import { uniqueName } from "./names.js";

/** A pod for tests: a named network namespace, removed by `delete()`. */
export class TestNetns {
  readonly path: string;

  private constructor(readonly name: string) {
    this.path = `/var/run/netns/${name}`;
  }

  static create(prefix = "wt"): TestNetns {
    const ns = new TestNetns(uniqueName(prefix));
    execFileSync("ip", ["netns", "add", ns.name]);
    execFileSync("ip", ["-n", ns.name, "link", "set", "lo", "up"]);
    return ns;
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string[], input?: string): string {
    return execFileSync("ip", ["netns", "exec", this.name, ...cmd], { encoding: "utf8", input });
  }

  /** `ip -j` output from inside the namespace, parsed. */
  ipJson<T = unknown>(args: string[]): T {
    return JSON.parse(
      execFileSync("ip", ["-n", this.name, "-j", ...args], { encoding: "utf8" }) || "[]",
    ) as T;
  }

  delete(): void {
    // A fast-path daemon serving this namespace (WEFT_TEST_FASTPATH) goes with it.
    stopDaemonIn(this.name);
    try {
      execFileSync("ip", ["netns", "del", this.name], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
}

export function assertRoot(): void {
  if (process.getuid?.() !== 0)
    throw new Error("integration tests need root (they create netns, links and rules)");
}
