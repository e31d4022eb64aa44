/** Every spec version weft speaks, oldest first, as VERSION reports them. */
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

export const CURRENT_VERSION = "1.1.0";

export type Triple = [number, number, number];

function atoi(part: string, which: string): number {
  // strconv.Atoi: an optional sign and decimal digits.
  if (!/^[+-]?\d+$/.test(part)) {
    throw new Error(
      `failed to convert ${which} version part ${JSON.stringify(part)}: strconv.Atoi: parsing ${JSON.stringify(part)}: invalid syntax`,
    );
  }
  return Number(part);
}

/**
 * version.ParseVersion: "x", "x.y" or "x.y.z" (missing parts are 0); an empty version means 0.1.0, as
 * the Go decoder treats a config without cniVersion. Throws Go's error texts.
 */
export function parseVersion(v: string): Triple {
  if (v === "") return [0, 1, 0];
  const parts = v.split(".");
  if (parts.length >= 4) throw new Error(`invalid version ${JSON.stringify(v)}: too many parts`);
  const major = atoi(parts[0]!, "major");
  const minor = parts.length >= 2 ? atoi(parts[1]!, "minor") : 0;
  const micro = parts.length >= 3 ? atoi(parts[2]!, "micro") : 0;
  return [major, minor, micro];
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

export function atLeast(version: string, floor: string): boolean {
  return compareVersions(version, floor) >= 0;
}

export function isSupported(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** The result layout a version uses: 0.1.0/0.2.0 have ip4/ip6, 0.3.x/0.4.0 add ips[].version, 1.x drops it. */
export type ResultFamily = "020" | "040" | "100";

export function resultFamily(version: string): ResultFamily {
  if (!atLeast(version, "0.3.0")) return "020";
  if (!atLeast(version, "1.0.0")) return "040";
  return "100";
}
