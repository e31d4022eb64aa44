import { CniError, ErrorCode } from "./errors.js";

/**
 * CNI_ARGS ("K=V;K=V"), parsed as the Go `types.LoadArgs` does: every pair must split into exactly two
 * parts, keys are case-sensitive, and keys the plugin does not know fail unless IgnoreUnknown is true.
 */
export type CniArgPairs = Array<[key: string, value: string]>;

export function splitCniArgs(args: string): CniArgPairs {
  if (args === "") return [];
  return args.split(";").map((pair) => {
    const kv = pair.split("=");
    if (kv.length !== 2) {
      throw new CniError(ErrorCode.InvalidEnvironment, `ARGS: invalid pair ${JSON.stringify(pair)}`);
    }
    return [kv[0]!, kv[1]!];
  });
}

/** Go's UnmarshallableBool: 1/true/True and 0/false/False. */
export function parseArgBool(value: string): boolean {
  if (value === "1" || value === "true" || value === "True") return true;
  if (value === "0" || value === "false" || value === "False") return false;
  throw new CniError(ErrorCode.InvalidEnvironment, `boolean unmarshal error: invalid input ${value}`);
}

/**
 * Returns the values of `known` keys. The last occurrence of a key wins, as with repeated struct fields.
 * `IgnoreUnknown` is always known.
 */
export function loadCniArgs(args: string, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const [k, v] of splitCniArgs(args)) {
    if (k === "IgnoreUnknown") {
      ignoreUnknown = parseArgBool(v);
      out[k] = v;
    } else if (known.includes(k)) {
      out[k] = v;
    } else {
      unknown.push(`${k}=${v}`);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    // Go prints the slice with %q: ["A=1" "B=2"]
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `ARGS: unknown args [${unknown.map((u) => JSON.stringify(u)).join(" ")}]`,
    );
  }
  return out;
}
