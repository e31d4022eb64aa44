import { invokedName, PLUGINS, runBuiltinPlugin } from "./plugins.js";
import { takeForwardedStdin } from "./thin-client.js";

/**
 * A plugin call that stays in this process, in the executable: the script of the plugins alone, without
 * weftd and the admin commands (rest-loader.ts), which multicall.ts would also carry. The loader only
 * comes here for a plugin's name.
 */
const name = invokedName();
const load = PLUGINS[name];
if (!load) throw new Error(`${name} is not a plugin of this executable`);
// stdin the thin client read before weftd declined the call is this call's stdin.
void runBuiltinPlugin(load, takeForwardedStdin());
