/**
 * JSON schemas of the parts of the network configuration every plugin shares. Plugin-specific keys are
 * described next to each plugin and combined with these by `validateConfig`.
 */
export type JsonSchema = Record<string, unknown>;

const dns: JsonSchema = {
  type: "object",
  properties: {
    nameservers: { type: "array", items: { type: "string" } },
    domain: { type: "string" },
    search: { type: "array", items: { type: "string" } },
    options: { type: "array", items: { type: "string" } },
  },
};

const attachments: JsonSchema = {
  type: "array",
  items: {
    type: "object",
    required: ["containerID", "ifname"],
    properties: { containerID: { type: "string" }, ifname: { type: "string" } },
  },
};

export const netConfSchema: JsonSchema = {
  type: "object",
  required: ["name"],
  properties: {
    cniVersion: { type: "string" },
    name: { type: "string" },
    type: { type: "string" },
    capabilities: { type: "object", additionalProperties: { type: "boolean" } },
    ipam: { type: "object", properties: { type: { type: "string" } } },
    dns,
    args: { type: "object" },
    runtimeConfig: { type: "object" },
    prevResult: { type: "object" },
    "cni.dev/valid-attachments": attachments,
    "cni.dev/attachments": attachments,
  },
};
