import { getRawAsset } from "node:sea";
import { Script } from "node:vm";

/**
 * The executable holds weft as two scripts (scripts/build.mjs). The SEA's main script is only the thin
 * client (entry.ts, thin-client.ts): a call weftd serves evaluates nothing else, and V8 deserializes the
 * code of nothing else. Everything else (the plugins, weftd, the admin commands) is the SEA asset
 * `weft.cjs`, compiled here only when this process does the work, with the asset `weft.cache`: V8's code
 * cache of that script taken at build time after real plugin calls ran in a sandbox
 * (scripts/train-code-cache.mjs), so the functions a call runs come compiled. The SEA's own code cache
 * would hold only what V8 compiles before running anything, and every function a call then runs for the
 * first time would be parsed and compiled in the call.
 */

export const REST_ASSET = "weft.cjs";
export const CACHE_ASSET = "weft.cache";

/** The name the rest's bundle imports the client's module by (the stdin it already read, ...). */
export const CLIENT_MODULE = "weft:client";

const FILENAME = "weft.cjs";

/** The source V8 compiles. Training and the executable must compile the same text for the cache to apply. */
export function wrapRest(code: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${code}\n})`;
}

/** The rest's script, with its code cache if there is one (V8 checks it and compiles anew if it does not fit). */
export function compileRest(code: string, cache?: Buffer): Script {
  return new Script(wrapRest(code), { filename: FILENAME, ...(cache ? { cachedData: cache } : {}) });
}

/** Runs the rest: its `require` gets Node's built-in modules, and this executable's client module by name. */
export function runRest(script: Script, nodeRequire: (id: string) => unknown, client: object): void {
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  const req = (id: string) => (id === CLIENT_MODULE ? client : nodeRequire(id));
  const module = { exports: {} };
  fn(module.exports, req, module, FILENAME, ".");
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

/**
 * The executable's local path: the rest from the SEA's assets. WEFT_CODE_CACHE_CHECK=1 (the build's check
 * of what it made) says on stderr when the code cache is missing or V8 refuses it (another V8, other flags).
 */
export function loadRestFromSea(nodeRequire: (id: string) => unknown, client: object): void {
  const code = asset(REST_ASSET);
  if (!code) throw new Error(`this executable has no ${REST_ASSET} (not built by scripts/build.mjs?)`);
  const cache = asset(CACHE_ASSET);
  // The bundle is ASCII (the build checks), so latin1 makes the same string as utf8 without decoding.
  const script = compileRest(code.toString("latin1"), cache);
  if (process.env.WEFT_CODE_CACHE_CHECK) {
    if (!cache) process.stderr.write(`weft: no ${CACHE_ASSET} in this executable\n`);
    else if (script.cachedDataRejected) process.stderr.write(`weft: V8 rejected ${CACHE_ASSET}\n`);
  }
  runRest(script, nodeRequire, client);
}
