/**
 * JSON bytes as Go's `json.Marshal` produces them for the reference flannel plugin's delegate map
 * (`map[string]interface{}`): compact, object keys sorted at every level, `<`, `>`, `&`, U+2028 and
 * U+2029 escaped. Objects built by `inStructOrder` keep their key order instead, as a Go struct does
 * (`types.Route` marshals dst, gw, mtu, advmss, priority, table, scope in that order).
 */

const STRUCT = Symbol("go-struct-order");

/** Marks `obj` as a Go struct: its keys are written in insertion order. */
export function inStructOrder<T extends object>(obj: T): T {
  Object.defineProperty(obj, STRUCT, { value: true, enumerable: false });
  return obj;
}

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

function str(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!);
}

function encode(v: unknown): string {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "string":
      return str(v);
    case "number":
      if (!Number.isFinite(v)) throw new Error(`json: unsupported value: ${v}`);
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (Array.isArray(v)) return `[${v.map(encode).join(",")}]`;
      const o = v as Record<string | symbol, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined);
      if (!o[STRUCT]) keys.sort(byUtf8);
      return `{${keys.map((k) => `${str(k)}:${encode(o[k])}`).join(",")}}`;
    }
    default:
      throw new Error(`json: unsupported type: ${typeof v}`);
  }
}

/** Go sorts map keys by their bytes; UTF-16 order differs only for astral characters. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function goMarshal(v: unknown): Buffer {
  return Buffer.from(encode(v));
}
