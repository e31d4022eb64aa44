import { createLogger } from "../shared/log.js";
import { monitorKernel } from "../shared/net/monitor.js";
import { WEFT_VERSION } from "../shared/version.js";
import { createBackend } from "./backends.js";
import { Daemon, type DaemonDeps } from "./daemon.js";
import { findExternalInterface } from "./external-iface.js";
import { FlagError, parseArgs, usage } from "./flags.js";
import { syncRules } from "./rules.js";
import { openStore } from "./stores.js";

/**
 * weftd's entry: flags (and FLANNELD_* variables) -> Daemon.run(). Exit status: 0 after SIGTERM/SIGINT
 * (lease, routes and subnet.env kept), 1 when it cannot start (bad net-conf, no interface, ...), 2 for
 * bad flags (as Go's flag package). Losing the lease never ends it: it is re-acquired in process.
 */
export async function main(argv: string[], overrides: Partial<DaemonDeps> = {}): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`weftd: ${err.message}\n`);
    return 2;
  }
  if (parsed.action === "help") {
    process.stdout.write(usage());
    return 0;
  }
  if (parsed.action === "version") {
    process.stdout.write(`weftd v${WEFT_VERSION}\n`);
    return 0;
  }
  // A daemon's log is its stderr (journald, kubectl logs): info lines go there unless told otherwise.
  const log = createLogger("weftd", { WEFT_LOG_STDERR_LEVEL: "info", ...process.env });
  for (const w of parsed.warnings) log.warn(w);
  const daemon = new Daemon(
    parsed.flags,
    { findExternalInterface, syncRules, createBackend, openStore, monitorKernel, ...overrides },
    log,
  );
  const onSignal = () => daemon.stop();
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    const code = await daemon.run();
    // Everything is closed by now; should a stray handle keep the process alive, it still ends.
    setTimeout(() => process.exit(code), 3000).unref();
    return code;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
