import { CniError, ErrorCode } from "./errors.js";
import { goQuote, goQuoteList } from "./goquote.js";

/**
 * CNI_ARGS ("K=V;K=V"), parsed as the Go `types.LoadArgs` does: every pair must split into exactly two
 * parts, keys are case-sensitive, and keys the plugin does not know fail unless IgnoreUnknown is true.
 * LoadArgs returns plain errors, which skel reports as code 999 (lab: host-local v1.1.1).
 */
export type CniArgPairs = Array<[key: string, value: string]>;

function splitPair(pair: string): [string, string] {
  const kv = pair.split("=");
  if (kv.length !== 2) throw new CniError(ErrorCode.Internal, `ARGS: invalid pair ${goQuote(pair)}`);
  return [kv[0]!, kv[1]!];
}

export function splitCniArgs(args: string): CniArgPairs {
  if (args === "") return [];
  return args.split(";").map(splitPair);
}

/** Go's UnmarshallableBool: 1/true and 0/false in any letter case. */
export function parseArgBool(value: string): boolean {
  const v = value.toLowerCase();
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  throw new CniError(ErrorCode.Internal, `boolean unmarshal error: invalid input ${v}`);
}

/**
 * Returns the values of `known` keys. Pairs are checked in order, so the first bad one is the error; the
 * last occurrence of a key wins, as with repeated struct fields. `IgnoreUnknown` is always known.
 */
export function loadCniArgs(args: string, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const unknown: string[] = [];
  let ignoreUnknown = false;
  if (args === "") return out;
  for (const pair of args.split(";")) {
    const [k, v] = splitPair(pair);
    if (k === "IgnoreUnknown") {
      try {
        ignoreUnknown = parseArgBool(v);
      } catch (err) {
        const msg = `ARGS: error parsing value of pair ${goQuote(pair)}: ${(err as CniError).msg}`;
        throw new CniError(ErrorCode.Internal, msg, "", { cause: err });
      }
      out[k] = v;
    } else if (known.includes(k)) {
      out[k] = v;
    } else {
      unknown.push(pair);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    throw new CniError(ErrorCode.Internal, `ARGS: unknown args ${goQuoteList(unknown)}`);
  }
  return out;
}
