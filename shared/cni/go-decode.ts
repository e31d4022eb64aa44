import { CniError, ErrorCode } from "./errors.js";
import { type JsonNode, JsonNumber, JsonObject, plainOf, put } from "./json-scan.js";
import type { JsonSchema } from "./schemas.js";

/**
 * Decoding a config document the way the reference's Go structs decode it with encoding/json, driven by
 * the config's JSON schema read as a Go type:
 * - an object schema with `properties` is a struct: each member goes to the field of exactly that name,
 *   else to the first field whose name matches case-insensitively (Go's rule, so containerd's
 *   `{"HostPort":8080}` fills `hostPort`), and is stored under the field's own name; members in
 *   document order, so of `{"hostPort":1,"HostPort":2}` the last wins; a struct member met twice is
 *   merged; members that match no field are kept as they are (Go ignores them, nothing here reads them);
 * - an object schema without `properties` is a map: keys stay exactly as written (flannel's `delegate`
 *   and `ipam`), values decoded by `additionalProperties` when it is a schema;
 * - `items` is a slice; no `type` at all is an `interface{}`, kept as it is;
 * - null: a pointer (a `type` that lists "null") becomes null, a slice, map or interface is dropped (nil),
 *   and a struct or a plain bool/int/string keeps what it had (Go: null is a no-op for values);
 * - a value of the wrong JSON kind fails with Go's UnmarshalTypeError text, and so does a number an
 *   `integer` field cannot hold (`1.5`, `1e3`, beyond int64), which JSON.parse would have let through.
 */

/** Go's UnmarshalTypeError, as `json: cannot unmarshal <value> into Go struct field <S>.<path> of type <T>`. */
export class GoTypeError extends CniError {
  constructor(msg: string) {
    super(ErrorCode.InvalidNetworkConfig, msg);
    this.name = "GoTypeError";
  }
}

export interface DecodeOptions {
  /**
   * Instead of failing on a value of the wrong type, report it and leave its struct field as if the key
   * were absent (a teardown decodes what it can rather than failing on every retry).
   */
  onTypeError?: (err: GoTypeError) => void;
}

interface Where {
  /** The innermost struct's Go name (schema `title`), as Go names it in the message. */
  struct: string;
  /** JSON field names from the top, as Go 1.20+ prints the field path. */
  path: string[];
  opts: DecodeOptions;
}

const typesOf = (s: JsonSchema): string[] => {
  const t = s.type;
  if (Array.isArray(t)) return t as string[];
  return typeof t === "string" ? [t] : [];
};

const isStruct = (s: JsonSchema) => s.properties !== undefined && typeof s.properties === "object";

/**
 * Go's case folding of a field name for matching (encoding/json foldName): ASCII letters to upper case;
 * of the other runes only the two whose fold set holds an ASCII letter can ever match a field name:
 * U+017F (long s) and U+212A (Kelvin sign).
 */
export function foldName(name: string): string {
  return name
    .toUpperCase()
    .replace(/\u017f/g, "S")
    .replace(/\u212a/g, "K");
}

const foldedFields = new WeakMap<JsonSchema, Map<string, string>>();

/** The field a member name decodes into: an exact name first, else the first case-insensitive match. */
export function fieldOf(schema: JsonSchema, member: string): string | undefined {
  const props = schema.properties as Record<string, JsonSchema>;
  if (Object.hasOwn(props, member)) return member;
  let folded = foldedFields.get(schema);
  if (!folded) {
    folded = new Map();
    // Field names are ASCII; the first field of a folded name wins, as in Go's field list.
    for (const name of Object.keys(props)) {
      const f = foldName(name);
      if (!folded.has(f)) folded.set(f, name);
    }
    foldedFields.set(schema, folded);
  }
  const field = folded.get(foldName(member));
  return field !== undefined && foldsLikeGo(member) ? field : undefined;
}

/**
 * toUpperCase maps some non-ASCII characters onto ASCII letters that Go's simple folding does not
 * ("ı" -> "I", "ß" -> "SS"); a name holding one of those matches no field.
 */
function foldsLikeGo(name: string): boolean {
  for (const c of name) {
    if (c.charCodeAt(0) < 0x80 || c === "\u017f" || c === "\u212a") continue;
    if (/[\x00-\x7f]/.test(c.toUpperCase())) return false;
  }
  return true;
}

/** The Go type a schema stands for, for messages: its `title` when it names one, else derived. */
export function goTypeName(s: JsonSchema): string {
  if (typeof s.title === "string") return s.title;
  const types = typesOf(s).filter((t) => t !== "null");
  const ptr = typesOf(s).includes("null") && !types.includes("array") ? "*" : "";
  switch (types[0]) {
    case "string":
      return `${ptr}string`;
    case "boolean":
      return `${ptr}bool`;
    case "integer":
      return `${ptr}int`;
    case "number":
      return `${ptr}float64`;
    case "array":
      return `[]${goTypeName((s.items as JsonSchema | undefined) ?? {})}`;
    case "object": {
      if (isStruct(s)) return `${ptr}struct`;
      const elem = s.additionalProperties;
      return `map[string]${typeof elem === "object" ? goTypeName(elem as JsonSchema) : "interface {}"}`;
    }
    default:
      return "interface {}";
  }
}

function typeError(value: string, s: JsonSchema, at: Where): GoTypeError {
  const field = at.path.join(".");
  const where = field === "" ? `Go value of type ${goTypeName(s)}` : `Go struct field ${at.struct}.${field}`;
  const of = field === "" ? "" : ` of type ${goTypeName(s)}`;
  return new GoTypeError(`json: cannot unmarshal ${value} into ${where}${of}`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function intOf(n: JsonNumber, s: JsonSchema, at: Where): number {
  if (!/^-?\d+$/.test(n.text)) throw typeError(`number ${n.text}`, s, at);
  const v = BigInt(n.text);
  if (v < INT64_MIN || v > INT64_MAX) throw typeError(`number ${n.text}`, s, at);
  return Number(v);
}

/** What decoding a null into a value of this schema does. */
function nullEffect(s: JsonSchema): "null" | "drop" | "keep" {
  const types = typesOf(s);
  if (types.includes("null")) return "null";
  if (types.length === 0 || types.includes("array")) return "drop";
  if (types.includes("object")) return isStruct(s) ? "keep" : "drop";
  return "keep";
}

/** A slice element null: pointers stay null, values are their type's zero value (Go leaves them zeroed). */
function zeroOf(s: JsonSchema): unknown {
  const types = typesOf(s);
  if (types.includes("null") || types.length === 0) return null;
  if (types.includes("object")) return isStruct(s) ? {} : null;
  if (types.includes("string")) return "";
  if (types.includes("boolean")) return false;
  if (types.includes("integer") || types.includes("number")) return 0;
  return null;
}

function decodeStruct(node: JsonObject, s: JsonSchema, into: unknown, at: Where): Record<string, unknown> {
  const props = s.properties as Record<string, JsonSchema>;
  const out: Record<string, unknown> =
    into && typeof into === "object" && !Array.isArray(into) ? { ...(into as object) } : {};
  // Go names the innermost struct type; an anonymous one (no title) has no name, but the top level is
  // the plugin's NetConf.
  let struct = at.path.length === 0 ? at.struct : "";
  if (typeof s.title === "string") struct = s.title.replace(/^\*/, "").replace(/^.*\./, "");
  for (const [member, value] of node.members) {
    const field = fieldOf(s, member);
    if (field === undefined) {
      put(out, member, plainOf(value));
      continue;
    }
    const fs = props[field]!;
    if (value === null) {
      const effect = nullEffect(fs);
      if (effect === "null") out[field] = null;
      else if (effect === "drop") delete out[field];
      continue;
    }
    const where = { struct, path: [...at.path, field], opts: at.opts };
    if (!at.opts.onTypeError) {
      out[field] = decodeValue(value, fs, out[field], where);
      continue;
    }
    try {
      out[field] = decodeValue(value, fs, out[field], where);
    } catch (err) {
      if (!(err instanceof GoTypeError)) throw err;
      at.opts.onTypeError(err);
    }
  }
  return out;
}

function decodeMap(node: JsonObject, s: JsonSchema, into: unknown, at: Where): Record<string, unknown> {
  const out: Record<string, unknown> =
    into && typeof into === "object" && !Array.isArray(into) ? { ...(into as object) } : {};
  const elem =
    typeof s.additionalProperties === "object" ? (s.additionalProperties as JsonSchema) : undefined;
  for (const [key, value] of node.members) {
    if (!elem) put(out, key, plainOf(value));
    else if (value === null) put(out, key, zeroOf(elem));
    // Go names no map key in the field path of an error, only struct fields.
    else put(out, key, decodeValue(value, elem, undefined, at));
  }
  return out;
}

function decodeValue(node: JsonNode, s: JsonSchema, into: unknown, at: Where): unknown {
  const types = isStruct(s) ? ["object", ...typesOf(s)] : typesOf(s);
  if (types.length === 0 && s.items === undefined) return plainOf(node);
  if (node === null) return zeroOf(s);
  if (node instanceof JsonObject) {
    if (!types.includes("object")) throw typeError("object", s, at);
    return isStruct(s) ? decodeStruct(node, s, into, at) : decodeMap(node, s, into, at);
  }
  if (Array.isArray(node)) {
    if (!types.includes("array")) throw typeError("array", s, at);
    const items = (s.items as JsonSchema | undefined) ?? {};
    return node.map((el) => (el === null ? zeroOf(items) : decodeValue(el, items, undefined, at)));
  }
  if (node instanceof JsonNumber) {
    if (types.includes("integer")) return intOf(node, s, at);
    if (types.includes("number")) return node.value;
    throw typeError("number", s, at);
  }
  if (typeof node === "boolean") {
    if (!types.includes("boolean")) throw typeError("bool", s, at);
    return node;
  }
  if (!types.includes("string")) throw typeError("string", s, at);
  return node;
}

/**
 * Decodes a parsed document into the Go type `schema` describes (see above). `struct` names the
 * top-level struct in error messages ("NetConf"), unless the schema's own `title` does.
 */
export function goDecode(node: JsonNode, schema: JsonSchema, struct = "", opts: DecodeOptions = {}): unknown {
  return decodeValue(node, schema, undefined, { struct, path: [], opts });
}

/**
 * Two config schemas as one Go struct: `outer` embeds `inner` (the plugin's NetConf embeds
 * types.NetConf), and a field of the outer struct hides the embedded one of the same name, as Go's
 * field selection does (flannel's `ipam` map hides types.NetConf's IPAM struct).
 */
export function embedSchema(outer: JsonSchema, inner: JsonSchema): JsonSchema {
  return {
    ...inner,
    ...outer,
    type: "object",
    properties: {
      ...((inner.properties as object | undefined) ?? {}),
      ...((outer.properties as object | undefined) ?? {}),
    },
  };
}
