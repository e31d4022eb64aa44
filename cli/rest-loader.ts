import { basename } from "node:path";
import { getRawAsset } from "node:sea";
import { Script } from "node:vm";
import { SERVED_PLUGINS } from "../shared/cni/socket-protocol.js";

/**
 * The executable holds weft as three scripts (scripts/build.mjs). The SEA's main script is only the thin
 * client (entry.ts, thin-client.ts): a call weftd serves evaluates nothing else, and V8 deserializes the
 * code of nothing else. When the call stays in this process, the loader here compiles one SEA asset:
 * - `plugins.cjs` for a plugin name (plugin-entry.ts: the four plugins and what they use, ~400 KiB),
 *   with `plugins.cache`: V8's code cache of that script taken at build time after real plugin calls ran
 *   in a sandbox (scripts/train-code-cache.mjs), so the functions a call runs come compiled;
 * - `weft.cjs` for weftd and the admin commands (multicall.ts, everything), with the code cache of what V8
 *   compiles up front (`weft.cache`).
 * The SEA's own code cache would hold only what V8 compiles before running anything, so every function
 * a call runs would be parsed and compiled in the call; and the larger the script, the more its cache
 * costs to deserialize, hence a script of the plugins alone.
 */

/** One script of the executable: its source and code cache assets (Script's filename: the source's). */
export interface RestAsset {
  code: string;
  cache: string;
}

export const PLUGINS_ASSET: RestAsset = { code: "plugins.cjs", cache: "plugins.cache" };
export const WEFT_ASSET: RestAsset = { code: "weft.cjs", cache: "weft.cache" };

/** The name the bundles import the client's module by (the stdin it already read, ...). */
export const CLIENT_MODULE = "weft:client";

/** The source V8 compiles. Training and the executable must compile the same text for the cache to apply. */
export function wrapRest(code: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${code}\n})`;
}

/** The script, with its code cache if there is one (V8 checks it and compiles anew if it does not fit). */
export function compileRest(code: string, filename: string, cache?: Buffer): Script {
  return new Script(wrapRest(code), { filename, ...(cache ? { cachedData: cache } : {}) });
}

/** Runs a compiled script: its `require` gets Node's built-in modules, and this executable's client module. */
export function runRest(
  script: Script,
  filename: string,
  nodeRequire: (id: string) => unknown,
  client: object,
): void {
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  const req = (id: string) => (id === CLIENT_MODULE ? client : nodeRequire(id));
  const module = { exports: {} };
  fn(module.exports, req, module, filename, ".");
}

/** The asset as it lies in the executable (no copy; never written to). */
function asset(key: string): Buffer | undefined {
  try {
    const raw = getRawAsset(key);
    return typeof raw === "string" ? Buffer.from(raw, "latin1") : Buffer.from(raw);
  } catch {
    return undefined;
  }
}

/** The script this process needs: the plugins' own for a plugin name, else all of weft. */
export function assetFor(name: string): RestAsset {
  return SERVED_PLUGINS.includes(name) ? PLUGINS_ASSET : WEFT_ASSET;
}

/**
 * The executable's local path: its script from the SEA's assets. WEFT_CODE_CACHE_CHECK=1 (the build's
 * check of what it made) says on stderr when the code cache is missing or V8 refuses it (another V8,
 * other flags).
 */
export function loadRestFromSea(nodeRequire: (id: string) => unknown, client: object): void {
  const which = assetFor(process.env.WEFT_MULTICALL_NAME || basename(process.argv0));
  const code = asset(which.code);
  if (!code) throw new Error(`this executable has no ${which.code} (not built by scripts/build.mjs?)`);
  const cache = asset(which.cache);
  // The bundles are ASCII (the build checks), so latin1 makes the same string as utf8 without decoding.
  const script = compileRest(code.toString("latin1"), which.code, cache);
  if (process.env.WEFT_CODE_CACHE_CHECK) {
    if (!cache) process.stderr.write(`weft: no ${which.cache} in this executable\n`);
    else if (script.cachedDataRejected) process.stderr.write(`weft: V8 rejected ${which.cache}\n`);
  }
  runRest(script, which.code, nodeRequire, client);
}
