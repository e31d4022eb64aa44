import { GoTypeError, goDecode } from "../../shared/cni/go-decode.js";
import { scanJson } from "../../shared/cni/json-scan.js";
import type { JsonSchema } from "../../shared/cni/schemas.js";
import type { LeaseAttrs } from "../lease.js";

/**
 * Reading a lease value back as flanneld reads one (json.Unmarshal into lease.LeaseAttrs): keys match
 * their fields case-insensitively, unknown keys are ignored, BackendData stays raw. A store's own extra
 * members (the file store's `Expiration`) are read through the same struct.
 */
const leaseValueSchema: JsonSchema = {
  type: "object",
  title: "lease.LeaseAttrs",
  properties: {
    PublicIP: { type: "string" },
    PublicIPv6: { type: ["string", "null"] },
    BackendType: { type: "string" },
    BackendData: {},
    BackendV6Data: {},
    Expiration: { type: "string" },
  },
};

export interface DecodedLeaseValue {
  attrs: LeaseAttrs;
  /** The file store's expiration (ms since the epoch); undefined when the value has none. */
  expiration?: number;
}

/** Parses a stored lease value; throws with Go's words (or "no PublicIP") when flanneld could not use it. */
export function decodeLeaseValue(text: string): DecodedLeaseValue {
  let v: Record<string, unknown>;
  try {
    v = goDecode(scanJson(text), leaseValueSchema, "LeaseAttrs") as Record<string, unknown>;
  } catch (err) {
    if (err instanceof GoTypeError || (err as Error).name === "JsonSyntaxError")
      throw new Error(`bad lease value: ${(err as Error).message}`, { cause: err });
    throw err;
  }
  if (typeof v.PublicIP !== "string" || v.PublicIP === "") throw new Error("bad lease value: no PublicIP");
  const attrs: LeaseAttrs = { PublicIP: v.PublicIP, PublicIPv6: (v.PublicIPv6 as string | null) ?? null };
  if (typeof v.BackendType === "string" && v.BackendType !== "") attrs.BackendType = v.BackendType;
  if (v.BackendData !== undefined && v.BackendData !== null) attrs.BackendData = v.BackendData;
  if (v.BackendV6Data !== undefined && v.BackendV6Data !== null) attrs.BackendV6Data = v.BackendV6Data;
  const out: DecodedLeaseValue = { attrs };
  if (typeof v.Expiration === "string") {
    const t = Date.parse(v.Expiration);
    if (Number.isNaN(t))
      throw new Error(`bad lease value: Expiration ${JSON.stringify(v.Expiration)} is not a time`);
    out.expiration = t;
  }
  return out;
}

/** Two lease values advertise the same thing (what a renewal compares before rewriting). */
export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return JSON.stringify(normal(a)) === JSON.stringify(normal(b));
}

function normal(a: LeaseAttrs): LeaseAttrs {
  return {
    PublicIP: a.PublicIP,
    PublicIPv6: a.PublicIPv6 ?? null,
    BackendType: a.BackendType ?? "",
    BackendData: sortKeys(a.BackendData ?? null),
    BackendV6Data: sortKeys(a.BackendV6Data ?? null),
  };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}
