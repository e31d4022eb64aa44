// Replaced by the build (esbuild `define`); unbundled runs report the development version.
declare const __WEFT_VERSION__: string | undefined;
declare const __WEFT_COMMIT__: string | undefined;

export const WEFT_VERSION = typeof __WEFT_VERSION__ === "string" ? __WEFT_VERSION__ : "0.0.0-dev";
export const WEFT_COMMIT = typeof __WEFT_COMMIT__ === "string" ? __WEFT_COMMIT__ : "unknown";
