import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from "ajv";
import { CniError, ErrorCode } from "./errors.js";
import type { JsonSchema } from "./schemas.js";

let ajv: AjvClass | undefined;
const compiled = new WeakMap<JsonSchema, ValidateFunction>();
let precompiled: Record<string, ValidateFunction> = {};

/**
 * The key a schema's precompiled validator is filed under: its content, so no schema needs an id (and no
 * hash module is loaded at startup just to name it).
 */
export function schemaKey(schema: JsonSchema): string {
  return JSON.stringify(schema);
}

/**
 * The packaged executable registers validators generated at build time by ajv's standalone code
 * (scripts/gen-validators.mjs): compiling schemas at run time costs more than the rest of an ADD.
 */
export function registerPrecompiled(validators: Record<string, ValidateFunction>): void {
  precompiled = validators;
}

async function compile(schema: JsonSchema): Promise<ValidateFunction> {
  const fn = compiled.get(schema) ?? precompiled[schemaKey(schema)];
  if (fn) compiled.set(schema, fn);
  if (!fn) {
    if (!ajv) {
      // Loaded on first use only, so VERSION and the about text never pay for ajv.
      const mod = (await import("ajv")) as unknown as {
        default: typeof AjvClass & { default?: typeof AjvClass };
      };
      const Ajv = mod.default.default ?? mod.default;
      ajv = new Ajv({ allErrors: false, strict: false });
    }
    const made = ajv.compile(schema);
    compiled.set(schema, made);
    return made;
  }
  return fn;
}

function describe(e: ErrorObject, doc: unknown): CniError {
  const path = e.instancePath || "/";
  // An allowed-values violation is the spec's "unsupported field": name the key and the value.
  if (e.keyword === "enum" || e.keyword === "const") {
    const value = e.instancePath
      .split("/")
      .slice(1)
      .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k.replace(/~1/g, "/")], doc);
    return new CniError(
      ErrorCode.UnsupportedField,
      `unsupported value ${JSON.stringify(value)} for field ${path.slice(1).replace(/\//g, ".")}`,
      e.message ?? "",
    );
  }
  return new CniError(
    ErrorCode.InvalidNetworkConfig,
    `invalid network config: ${path} ${e.message ?? ""}`.trim(),
  );
}

/** The first violation of `schema` by `doc` as ajv reports it, or undefined (for messages of one's own). */
export async function firstSchemaError(schema: JsonSchema, doc: unknown): Promise<ErrorObject | undefined> {
  const fn = await compile(schema);
  return fn(doc) ? undefined : fn.errors![0]!;
}

/**
 * Checks `doc` against `schema`; the first violation becomes a code 7 (or 2) CNI error. With
 * `dropInvalid` (a teardown), a violation is reported instead and the object member holding it is
 * removed from `doc` (the whole `routes` list for a bad route), until what is left validates.
 */
export async function validateSchema<T>(
  schema: JsonSchema,
  doc: unknown,
  dropInvalid?: (err: CniError) => void,
): Promise<T> {
  const fn = await compile(schema);
  for (let tries = 0; !fn(doc); tries++) {
    const e = fn.errors![0]!;
    if (!dropInvalid || tries >= 32 || !dropMemberAt(doc, e.instancePath)) throw describe(e, doc);
    dropInvalid(describe(e, doc));
  }
  return doc as T;
}

/** Removes the deepest object member on a JSON pointer path; false when the path names no member. */
function dropMemberAt(doc: unknown, pointer: string): boolean {
  const path = pointer
    .split("/")
    .slice(1)
    .map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
  let owner: Record<string, unknown> | undefined;
  let key: string | undefined;
  let node = doc;
  for (const k of path) {
    if (node && typeof node === "object" && !Array.isArray(node)) {
      owner = node as Record<string, unknown>;
      key = k;
    }
    node = (node as Record<string, unknown> | undefined)?.[k];
  }
  if (!owner || key === undefined) return false;
  delete owner[key];
  return true;
}
