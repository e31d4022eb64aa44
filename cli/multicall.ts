import { invokedName, PLUGINS, runBuiltinPlugin } from "./plugins.js";
import { takeForwardedStdin } from "./thin-client.js";

/**
 * The single executable behind every name: `flannel`, `bridge`, `host-local` and `portmap` are hard links
 * to it, and it becomes whichever it was run as. Only the invoked entry's code is initialised.
 */
async function main(): Promise<void> {
  const name = invokedName();
  const plugin = PLUGINS[name];
  // stdin the thin client read before weftd declined the call is this call's stdin.
  if (plugin) return runBuiltinPlugin(plugin, takeForwardedStdin());
  if (name === "weftd") {
    const { main: daemonMain } = await import("../daemon/main.js");
    process.exitCode = await daemonMain(process.argv.slice(2));
    return;
  }
  const { main: cliMain } = await import("./main.js");
  process.exitCode = await cliMain(process.argv.slice(2));
}

void main();
