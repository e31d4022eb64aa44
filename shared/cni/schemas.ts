/**
 * JSON schemas of the config documents. Each describes a reference Go struct, so it serves twice: skel
 * decodes a config into it the way Go's encoding/json does (shared/cni/go-decode.ts: an object schema
 * with `properties` is a struct, whose keys match case-insensitively; one without is a map, whose keys
 * stay exact; a `type` listing "null" is a pointer), then ajv validates what types alone do not say.
 * Plugin-specific keys are described next to each plugin and embed `netConfSchema`.
 */
export type JsonSchema = Record<string, unknown>;

const strings = { type: "array", items: { type: "string" } };

/** types.DNS */
export const dnsSchema: JsonSchema = {
  type: "object",
  title: "types.DNS",
  properties: {
    nameservers: strings,
    domain: { type: "string" },
    search: strings,
    options: strings,
  },
};

const int = { type: "integer" };

/** types.Route (dst and gw are net.IPNet / net.IP, JSON strings); table and scope are *int. */
export const routeSchema: JsonSchema = {
  type: "object",
  title: "types.Route",
  properties: {
    dst: { type: "string" },
    gw: { type: "string" },
    mtu: int,
    advmss: int,
    priority: int,
    table: { type: ["integer", "null"] },
    scope: { type: ["integer", "null"] },
  },
};

/**
 * types.GCAttachment list (cni.dev/valid-attachments; libcni also sends the legacy cni.dev/attachments).
 * Both keys are required, where Go would take "" for a missing one: GC removes what the list does not
 * name, so a malformed entry is refused rather than read as naming nothing.
 */
const attachments: JsonSchema = {
  type: "array",
  items: {
    type: "object",
    title: "types.GCAttachment",
    required: ["containerID", "ifname"],
    properties: { containerID: { type: "string" }, ifname: { type: "string" } },
  },
};

/** types.NetConf, embedded in every plugin's config struct. */
export const netConfSchema: JsonSchema = {
  type: "object",
  properties: {
    cniVersion: { type: "string" },
    name: { type: "string" },
    type: { type: "string" },
    capabilities: { type: "object", additionalProperties: { type: "boolean" } },
    ipam: { type: "object", title: "types.IPAM", properties: { type: { type: "string" } } },
    dns: dnsSchema,
    // RawPrevResult is a map[string]interface{}: its keys stay exact here and fold when the result is
    // decoded (results.ts).
    prevResult: { type: "object" },
    "cni.dev/valid-attachments": attachments,
    "cni.dev/attachments": attachments,
  },
};
