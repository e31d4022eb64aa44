import type { ErrorObject } from "ajv";
import { fieldOf, GoTypeError, goDecode } from "../shared/cni/go-decode.js";
import { type JsonNode, JsonObject, JsonSyntaxError, plainOf, scanJson } from "../shared/cni/json-scan.js";
import type { JsonSchema } from "../shared/cni/schemas.js";
import { firstSchemaError } from "../shared/cni/validate.js";
import {
  bitsOf,
  containsAddr,
  type Family,
  formatAddr,
  formatPrefix,
  onBoundary,
  type Prefix,
  parseGoCidr,
  parseGoIp,
  sizeOf,
} from "./addr.js";

/**
 * flannel's network config (net-conf.json, or `<prefix>/config` in etcd) after parsing, defaults and
 * flannel's validation (pkg/subnet/config.go ParseConfig + CheckNetworkConfig). Subnets and addresses are
 * canonical text (Go's forms).
 */
export interface NetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** `Network`, e.g. "10.244.0.0/16" (when enableIPv4). */
  network?: string;
  /** `SubnetLen`, defaulted as flannel does (24 for a /22 or larger network, else prefix + 2). */
  subnetLen: number;
  /** `SubnetMin` / `SubnetMax`: network addresses of the first and last subnet a node may lease. */
  subnetMin?: string;
  subnetMax?: string;
  ipv6Network?: string;
  ipv6SubnetLen: number;
  ipv6SubnetMin?: string;
  ipv6SubnetMax?: string;
  backend: BackendConfig;
  /** The document as read, for logs ("Found network config - Backend type: vxlan"). */
  raw: string;
}

export interface BackendConfig {
  type: "vxlan" | "host-gw";
  /** vxlan: `VNI` (default 1), `Port` (0 = the kernel's 8472), `DirectRouting`, `MTU` (0 = underlay's). */
  vni: number;
  port: number;
  directRouting: boolean;
  mtu: number;
}

/** A network config weftd cannot use; the message names the key and what it may hold. */
export class NetConfError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetConfError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Schemas. Each describes the Go struct flannel decodes into (go-decode.ts reads an object schema with
// `properties` as a struct whose keys match case-insensitively), and ajv checks what types alone do not.

/**
 * subnet.Config. The address fields have their own UnmarshalJSON in flannel (ip.IP4Net, ip.IP4, ...),
 * which takes any JSON value and parses its text, so here they are untyped and parsed below.
 */
const configSchema: JsonSchema = {
  type: "object",
  title: "subnet.Config",
  properties: {
    EnableIPv4: { type: "boolean" },
    EnableIPv6: { type: "boolean" },
    // flannel's nftables mode; weftd's rules are iptables (FLANNEL-POSTRTG / FLANNEL-FWD) only.
    EnableNFTables: { type: "boolean", const: false },
    Network: {},
    IPv6Network: {},
    SubnetMin: {},
    SubnetMax: {},
    IPv6SubnetMin: {},
    IPv6SubnetMax: {},
    SubnetLen: { type: "integer", title: "uint" },
    IPv6SubnetLen: { type: "integer", title: "uint" },
    Backend: {},
  },
};

/** The anonymous `struct{ Type string }` flannel reads the backend type with (parseBackendType). */
const backendTypeSchema: JsonSchema = {
  type: "object",
  required: ["Type"],
  properties: { Type: { type: "string", enum: ["vxlan", "host-gw"] } },
};

/** vxlan.VXLANConfig (json tags vni, port, mtu, gbp, learning, directRouting). */
const vxlanSchema: JsonSchema = {
  type: "object",
  title: "vxlan.VXLANConfig",
  properties: {
    vni: { type: "integer", minimum: 0, maximum: 16777215 },
    port: { type: "integer", minimum: 0, maximum: 65535 },
    mtu: { type: "integer", minimum: 0, maximum: 65535 },
    // Group-based policy and kernel learning are not in weft's vxlan device; refuse rather than ignore.
    gbp: { type: "boolean", const: false },
    learning: { type: "boolean", const: false },
    directRouting: { type: "boolean" },
  },
};

/** Every schema weftd validates net-conf with, for the build's precompiled validators. */
export const NET_CONF_SCHEMAS: JsonSchema[] = [configSchema, backendTypeSchema, vxlanSchema];

/** How the documentation spells each key (Go's json tags are lower case; both decode alike). */
const KEY_NAMES: Record<string, string> = {
  vni: "VNI",
  port: "Port",
  mtu: "MTU",
  gbp: "GBP",
  learning: "Learning",
  directRouting: "DirectRouting",
};

const WHY: Record<string, string> = {
  EnableNFTables: " (weftd programs flannel's iptables chains only)",
  GBP: " (weft's vxlan device has no group-based policy)",
  Learning: " (weft's vxlan device is nolearning: remote VTEPs come from the leases)",
};

// ---------------------------------------------------------------------------------------------------------

/**
 * Parses net-conf.json as flanneld does (json.Unmarshal into subnet.Config with EnableIPv4 defaulting to
 * true, then CheckNetworkConfig's defaults and checks, then the backend's own config), with one deliberate
 * difference: a config without `Backend` gets vxlan, the default flannel's documentation states (its code
 * says "udp", a backend weft does not have).
 */
export async function parseNetConf(text: string): Promise<NetworkConfig> {
  let node: JsonNode;
  try {
    node = scanJson(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new NetConfError(err.message, { cause: err });
    throw err;
  }
  const doc = decode(node, configSchema, "Config", "") as Record<string, unknown>;
  await check(configSchema, doc, "");
  for (const key of ["SubnetLen", "IPv6SubnetLen"]) {
    const v = doc[key];
    // Go's uint refuses a negative number as a type error.
    if (typeof v === "number" && v < 0)
      throw new NetConfError(
        `json: cannot unmarshal number ${v} into Go struct field Config.${key} of type uint`,
      );
  }
  // A top-level null decodes to the zero Config, as in Go.
  const top = node instanceof JsonObject ? node : new JsonObject([]);
  const enableIPv4 = (doc.EnableIPv4 as boolean | undefined) ?? true;
  const enableIPv6 = (doc.EnableIPv6 as boolean | undefined) ?? false;
  if (!enableIPv4 && !enableIPv6)
    throw new NetConfError("EnableIPv4 and EnableIPv6 are both false: at least one must be true");

  const cfg: NetworkConfig = {
    enableIPv4,
    enableIPv6,
    subnetLen: (doc.SubnetLen as number | undefined) ?? 0,
    ipv6SubnetLen: (doc.IPv6SubnetLen as number | undefined) ?? 0,
    backend: await parseBackend(rawMember(top, "Backend")),
    raw: text,
  };
  // flannel decodes every address field whatever EnableIPv4/6 say, so a malformed one fails either way.
  const network = optional(top, "Network", (t) => cidrOf(t, 4));
  const v6network = optional(top, "IPv6Network", (t) => cidrOf(t, 6));
  const min = optional(top, "SubnetMin", (t) => ipOf(t, 4));
  const max = optional(top, "SubnetMax", (t) => ipOf(t, 4));
  const min6 = optional(top, "IPv6SubnetMin", (t) => ipOf(t, 6));
  const max6 = optional(top, "IPv6SubnetMax", (t) => ipOf(t, 6));

  if (enableIPv4) {
    const r = checkFamily(4, network, cfg.subnetLen, min, max);
    cfg.network = formatPrefix(r.network);
    cfg.subnetLen = r.subnetLen;
    cfg.subnetMin = formatAddr(4, r.min);
    cfg.subnetMax = formatAddr(4, r.max);
  }
  if (enableIPv6) {
    const r = checkFamily(6, v6network, cfg.ipv6SubnetLen, min6, max6);
    cfg.ipv6Network = formatPrefix(r.network);
    cfg.ipv6SubnetLen = r.subnetLen;
    cfg.ipv6SubnetMin = formatAddr(6, r.min);
    cfg.ipv6SubnetMax = formatAddr(6, r.max);
  }
  return cfg;
}

/** flannel's CheckNetworkConfig for one family, its messages first, then what the key may hold. */
function checkFamily(
  family: Family,
  network: Prefix | undefined,
  subnetLen: number,
  minIn: bigint | undefined,
  maxIn: bigint | undefined,
): { network: Prefix; subnetLen: number; min: bigint; max: bigint } {
  const v6 = family === 6;
  const k = (name: string) => (v6 ? `IPv6${name}` : name);
  const netKey = v6 ? "IPv6Network" : "Network";
  const bits = bitsOf(family);
  const example = v6 ? "fc00::/48" : "10.244.0.0/16";
  // ip.IP4Net.Empty(): 0.0.0.0/0 counts as absent.
  if (!network || (network.ip === 0n && network.len === 0))
    throw new NetConfError(
      `please define a correct ${netKey} parameter in the flannel config (${netKey}: an IPv${family} CIDR such as ${example})`,
    );
  const smallest = bits - 4; // four subnets of four addresses
  const lenRange =
    network.len + 2 <= bits - 2
      ? `allowed values: ${network.len + 2}..${bits - 2}`
      : `no SubnetLen fits: ${netKey} must be /${smallest} or larger`;
  if (subnetLen > 0) {
    if (subnetLen > bits - 2)
      throw new NetConfError(
        `SubnetLen must be less than /${bits - 1} (${k("SubnetLen")} ${subnetLen} with ${netKey} ${formatPrefix(network)}: ${lenRange})`,
      );
    if (subnetLen < network.len + 2)
      throw new NetConfError(
        `network must be able to accommodate at least four subnets (${k("SubnetLen")} ${subnetLen} with ${netKey} ${formatPrefix(network)}: ${lenRange})`,
      );
  } else if (network.len > smallest) {
    throw new NetConfError(
      `${v6 ? "IPv6Network" : "network"} is too small. Minimum useful network prefix is /${smallest} (${netKey} is ${formatPrefix(network)})`,
    );
  } else {
    const byDefault = v6 ? 64 : 24;
    subnetLen = network.len <= byDefault - 2 ? byDefault : network.len + 2;
  }
  const size = sizeOf(family, subnetLen);
  const first = network.ip + size;
  const last = network.ip + sizeOf(family, network.len) - size;
  const span = `allowed: ${formatAddr(family, first)} .. ${formatAddr(family, last)} on /${subnetLen} boundaries`;
  const pick = (which: "Min" | "Max", given: bigint | undefined, fallback: bigint): bigint => {
    // flannel treats the zero address as "not set".
    if (given === undefined || given === 0n) return fallback;
    const key = k(`Subnet${which}`);
    if (!containsAddr(network, given))
      throw new NetConfError(
        `${key} is not in the range of the ${netKey} (${key} ${formatAddr(family, given)}, ${netKey} ${formatPrefix(network)}; ${span})`,
      );
    if (!onBoundary(family, given, subnetLen))
      throw new NetConfError(`${key} is not on a SubnetLen boundary: ${formatAddr(family, given)} (${span})`);
    return given;
  };
  const min = pick("Min", minIn, first);
  const max = pick("Max", maxIn, last);
  // flannel accepts this and then finds no subnet to lease; say so before leasing.
  if (min > max)
    throw new NetConfError(
      `${k("SubnetMin")} ${formatAddr(family, min)} is above ${k("SubnetMax")} ${formatAddr(family, max)}: no subnet can be leased (${span})`,
    );
  return { network, subnetLen, min, max };
}

async function parseBackend(node: JsonNode | undefined): Promise<BackendConfig> {
  const out: BackendConfig = { type: "vxlan", vni: 1, port: 0, directRouting: false, mtu: 0 };
  if (node === undefined || node === null) return out;
  const t = decode(node, backendTypeSchema, "", "error decoding Backend property of config: ");
  await check(backendTypeSchema, t, "Backend.");
  out.type = (t as { Type: BackendConfig["type"] }).Type;
  if (out.type !== "vxlan") return out;
  const v = decode(node, vxlanSchema, "VXLANConfig", "error decoding VXLAN backend config: ") as Record<
    string,
    unknown
  >;
  await check(vxlanSchema, v, "Backend.");
  out.vni = (v.vni as number | undefined) ?? 1;
  out.port = (v.port as number | undefined) ?? 0;
  out.mtu = (v.mtu as number | undefined) ?? 0;
  out.directRouting = (v.directRouting as boolean | undefined) ?? false;
  return out;
}

function decode(node: JsonNode, schema: JsonSchema, struct: string, prefix: string): unknown {
  try {
    return goDecode(node, schema, struct);
  } catch (err) {
    if (err instanceof GoTypeError) throw new NetConfError(`${prefix}${err.message}`, { cause: err });
    throw err;
  }
}

async function check(schema: JsonSchema, doc: unknown, prefix: string): Promise<void> {
  const e = await firstSchemaError(schema, doc);
  if (e) throw new NetConfError(describe(e, schema, doc, prefix));
}

/** An ajv error as "<key>: <value> ...; allowed values: ...", naming the key as the docs spell it. */
function describe(e: ErrorObject, schema: JsonSchema, doc: unknown, prefix: string): string {
  const path = e.instancePath.split("/").slice(1);
  const field =
    e.keyword === "required" ? (e.params as { missingProperty: string }).missingProperty : path.at(-1);
  const props = schema.properties as Record<string, JsonSchema>;
  const s = (field !== undefined ? props[field] : undefined) ?? {};
  const key = `${prefix}${KEY_NAMES[field ?? ""] ?? field ?? ""}`;
  const value = field !== undefined ? (doc as Record<string, unknown>)[field] : doc;
  const why = WHY[KEY_NAMES[field ?? ""] ?? field ?? ""] ?? "";
  const allowed = () => {
    if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((x) => JSON.stringify(x)).join(", ");
    if ("const" in s) return JSON.stringify(s.const);
    if (s.minimum !== undefined || s.maximum !== undefined) return `${s.minimum ?? ""}..${s.maximum ?? ""}`;
    return String(s.type ?? "");
  };
  switch (e.keyword) {
    case "required":
      return `${key} is missing; allowed values: ${allowed()}`;
    case "enum":
    case "const":
    case "minimum":
    case "maximum":
      return `${key}: unsupported value ${JSON.stringify(value)}; allowed values: ${allowed()}${why}`;
    default:
      return `${key}: ${e.message ?? "is invalid"}`;
  }
}

/** The raw node of the last member decoding into `field` (Go: the last duplicate wins). */
function rawMember(top: JsonObject, field: string): JsonNode | undefined {
  let found: JsonNode | undefined;
  for (const [name, value] of top.members) if (fieldOf(configSchema, name) === field) found = value;
  return found;
}

/**
 * A field with its own UnmarshalJSON in flannel: the raw JSON with its quotes trimmed is parsed as text,
 * so a number or `null` reaches the parser as "5" or "null". Errors name the key.
 */
function optional<T>(top: JsonObject, field: string, parse: (text: string) => T): T | undefined {
  const node = rawMember(top, field);
  if (node === undefined) return undefined;
  // Pointer fields (IPv6SubnetMin/Max) become nil on null; the value fields parse the text "null" and fail.
  if (node === null && field.startsWith("IPv6Subnet")) return undefined;
  const text = typeof node === "string" ? node : JSON.stringify(plainOf(node));
  try {
    return parse(text);
  } catch (err) {
    throw new NetConfError(`${field}: ${(err as Error).message}`, { cause: err });
  }
}

function cidrOf(text: string, family: Family): Prefix {
  const p = parseGoCidr(text);
  if (p.family !== family) throw new Error(`invalid IPv${family} CIDR format: ${text}`);
  return p;
}

function ipOf(text: string, family: Family): bigint {
  const ip = parseGoIp(text);
  if (ip.family !== family) throw new Error(`invalid IPv${family} address format: ${text}`);
  return ip.value;
}
