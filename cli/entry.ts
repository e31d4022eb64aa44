import { forwardToDaemon } from "./thin-client.js";

/**
 * The executable's first code: a plugin call goes to weftd when one serves this node (thin-client.ts);
 * only otherwise is the rest of weft (`loadRest`: the validators and the multi-call dispatcher) compiled
 * and evaluated. The build makes this the SEA's main script and the rest an asset (scripts/build.mjs,
 * rest-loader.ts).
 */
export function start(loadRest: () => Promise<unknown>): void {
  forwardToDaemon().then(
    (exitCode) => {
      if (exitCode === undefined) return loadRest();
      process.exit(exitCode);
    },
    // The client failed before sending anything it could not take back (reading stdin, building the
    // request): the executable does the work itself, as without a daemon.
    () => loadRest(),
  );
}
