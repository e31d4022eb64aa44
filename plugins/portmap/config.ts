import { isIPv4, isIPv6, SocketAddress } from "node:net";
import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import { parseResult } from "../../shared/cni/results.js";
import type { JsonSchema } from "../../shared/cni/schemas.js";
import type { NetConf, PortMapping, Result } from "../../shared/cni/types.js";

/** portmap's configuration keys (README.md), as the reference's PortMapConf declares them. */
export interface PortMapNetConf extends NetConf {
  backend?: string | null;
  snat?: boolean | null;
  conditionsV4?: string[] | null;
  conditionsV6?: string[] | null;
  masqAll?: boolean;
  markMasqBit?: number | null;
  externalSetMarkChain?: string | null;
}

export type BackendName = "iptables" | "nftables";

/** The container address a mapping forwards to: the pod IP and the prefix of its subnet. */
export interface ContainerNet {
  family: 4 | 6;
  /** The address in Go's net.IP.String() form. */
  ip: string;
  prefix: number;
  /** `ip/prefix`, host bits kept, as Go's IPNet.String() prints the prevResult address. */
  cidr: string;
}

/** A validated configuration, with the defaults the reference applies. */
export interface PortMapConfig {
  name: string;
  containerId: string;
  /** The backend the config names; undefined means "iptables unless only nftables is usable". */
  backend: BackendName | undefined;
  snat: boolean;
  masqAll: boolean;
  markMasqBit: number;
  externalSetMarkChain: string | undefined;
  conditionsV4: string[];
  conditionsV6: string[];
  mappings: PortMapping[];
  /** Options that only one backend understands, by backend (for the reference's mismatch error). */
  backendOptions: Record<BackendName, string[]>;
  prevResult: Result | undefined;
  contIPv4: ContainerNet | undefined;
  contIPv6: ContainerNet | undefined;
}

/** Kubernetes uses mark bits 14 and 15, Calico 20-31; the reference picked 13. */
export const DEFAULT_MARK_BIT = 13;

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);

/**
 * The reference's PortMapConf as a schema (pointers are the types that list "null"). skel decodes the
 * config into it as json.Unmarshal does: containerd's go-cni sends `{"HostPort":8080,...}` (its
 * PortMapping has no json tags) and Go's case-insensitive match fills `hostPort`.
 */
export const portMapSchema: JsonSchema = {
  type: "object",
  properties: {
    backend: { type: ["string", "null"] },
    snat: { type: ["boolean", "null"] },
    conditionsV4: { type: ["array", "null"], items: { type: "string" } },
    conditionsV6: { type: ["array", "null"], items: { type: "string" } },
    masqAll: { type: "boolean" },
    markMasqBit: { type: ["integer", "null"] },
    runtimeConfig: {
      type: "object",
      properties: {
        portMappings: {
          type: "array",
          items: {
            type: "object",
            title: "main.PortMapEntry",
            properties: {
              hostPort: { type: "integer" },
              containerPort: { type: "integer" },
              protocol: { type: "string" },
              hostIP: { type: "string" },
            },
          },
        },
      },
    },
    externalSetMarkChain: { type: ["string", "null"] },
  },
};

const invalid = (msg: string) => new CniError(ErrorCode.InvalidNetworkConfig, msg);

/**
 * The reference's detectBackendOfConditions: a first token starting with `-` or `!` is iptables syntax
 * (`-d`, `--sport`, `! -s`); anything else is nft syntax.
 */
export function backendOfConditions(conditions: string[] | null | undefined): BackendName | undefined {
  const first = conditions?.[0];
  if (!first) return undefined;
  return first.startsWith("-") || first.startsWith("!") ? "iptables" : "nftables";
}

function collectBackendOptions(conf: PortMapNetConf): Record<BackendName, string[]> {
  const out: Record<BackendName, string[]> = { iptables: [], nftables: [] };
  if (conf.externalSetMarkChain != null) out.iptables.push("externalSetMarkChain");
  const v4 = backendOfConditions(conf.conditionsV4);
  if (v4) out[v4].push("conditionsV4");
  const v6 = backendOfConditions(conf.conditionsV6);
  if (v6) out[v6].push("conditionsV6");
  return out;
}

/** The reference's error when options of one backend meet the other: `... options [conditionsV4]`. */
export function checkBackendOptions(conf: PortMapConfig, backend: BackendName): void {
  const wrong: BackendName = backend === "iptables" ? "nftables" : "iptables";
  const opts = conf.backendOptions[wrong];
  if (opts.length > 0) {
    throw invalid(
      `${backend} backend was requested but configuration contains ${wrong}-specific options [${opts.join(" ")}]`,
    );
  }
}

function checkMapping(pm: PortMapping): PortMapping {
  // The reference's port checks (and texts), plus the upper bound and the protocol, which it leaves to
  // iptables to reject half-way through an ADD.
  if (!(pm.containerPort > 0)) throw invalid(`Invalid container port number: ${pm.containerPort ?? 0}`);
  if (!(pm.hostPort > 0)) throw invalid(`Invalid host port number: ${pm.hostPort ?? 0}`);
  if (pm.containerPort > 65535) throw invalid(`Invalid container port number: ${pm.containerPort}`);
  if (pm.hostPort > 65535) throw invalid(`Invalid host port number: ${pm.hostPort}`);
  const protocol = typeof pm.protocol === "string" ? pm.protocol.toLowerCase() : "";
  if (!PROTOCOLS.has(protocol)) throw invalid(`Invalid protocol: ${JSON.stringify(pm.protocol ?? "")}`);
  const out: PortMapping = { hostPort: pm.hostPort, containerPort: pm.containerPort, protocol };
  if (pm.hostIP) {
    if (!isIPv4(pm.hostIP) && !isIPv6(pm.hostIP)) throw invalid(`Invalid host IP: ${pm.hostIP}`);
    out.hostIP = pm.hostIP;
  }
  return out;
}

/** The kernel's text form of an IPv6 address (inet_ntop: RFC 5952, as Go prints it too). */
function ipv6Text(ip: string): string {
  return new SocketAddress({ address: ip, family: "ipv6" }).address;
}

/**
 * Go's net.IP.String(): RFC 5952 for IPv6, dotted quad for IPv4 and IPv4-mapped IPv6. (Node's own
 * inet_ntop rather than ip-address: this runs on every ADD and the library costs more to load.)
 */
function canonicalIp(ip: string): { family: 4 | 6; ip: string } | undefined {
  if (isIPv4(ip)) return { family: 4, ip };
  if (!isIPv6(ip) || ip.includes("%")) return undefined;
  const text = ipv6Text(ip);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (mapped) return { family: 4, ip: mapped[1]! };
  return { family: 6, ip: text };
}

export function containerNetOf(address: string): ContainerNet | undefined {
  const [ip, len] = address.split("/");
  const parsed = canonicalIp(ip ?? "");
  if (!parsed || len === undefined || !/^\d{1,3}$/.test(len)) return undefined;
  const prefix = Number(len);
  if (prefix > (parsed.family === 4 ? 32 : 128)) return undefined;
  return { family: parsed.family, ip: parsed.ip, prefix, cidr: `${parsed.ip}/${prefix}` };
}

/**
 * The reference's container IP selection: the first IPv4 and the first IPv6 address of prevResult,
 * skipping addresses that name an interface which is not CNI_IFNAME inside the sandbox.
 */
export function selectContainerIps(result: Result, ifname: string): [ContainerNet?, ContainerNet?] {
  let v4: ContainerNet | undefined;
  let v6: ContainerNet | undefined;
  for (const ip of result.ips ?? []) {
    const net = containerNetOf(ip.address);
    if (!net || (net.family === 4 ? v4 : v6)) continue;
    const idx = ip.interface;
    const ifaces = result.interfaces ?? [];
    if (typeof idx === "number" && idx >= 0 && idx < ifaces.length) {
      const iface = ifaces[idx]!;
      if (iface.name !== ifname || !iface.sandbox) continue;
    }
    if (net.family === 4) v4 = net;
    else v6 = net;
  }
  return [v4, v6];
}

export interface ParseOptions {
  containerId: string;
  ifname: string;
  /** Check each port mapping (ADD, CHECK). DEL tears down by name and ID alone and skips this. */
  checkMappings: boolean;
}

/** The reference's parseConfig: defaults, the markMasqBit/externalSetMarkChain rules, backend and IPs. */
export function parseConfig(conf: PortMapNetConf, opts: ParseOptions): PortMapConfig {
  let prevResult: Result | undefined;
  if (conf.prevResult !== undefined && conf.prevResult !== null) {
    try {
      prevResult = parseResult(conf.prevResult, conf.cniVersion);
    } catch (err) {
      throw new CniError(ErrorCode.DecodingFailure, `could not parse prevResult: ${(err as Error).message}`);
    }
  }
  if (conf.markMasqBit != null && conf.externalSetMarkChain != null) {
    throw invalid("Cannot specify externalSetMarkChain and markMasqBit");
  }
  const markMasqBit = conf.markMasqBit ?? DEFAULT_MARK_BIT;
  if (markMasqBit < 0 || markMasqBit > 31) throw invalid("MasqMarkBit must be between 0 and 31");

  let backend: BackendName | undefined;
  if (conf.backend !== undefined && conf.backend !== null) {
    if (conf.backend !== "iptables" && conf.backend !== "nftables") {
      throw invalid(`unrecognized backend ${JSON.stringify(conf.backend)}`);
    }
    backend = conf.backend;
  }

  const raw = conf.runtimeConfig?.portMappings ?? [];
  const mappings = opts.checkMappings
    ? raw.map(checkMapping)
    : raw.map((pm) => ({ ...pm, protocol: String(pm.protocol ?? "").toLowerCase() }));

  const [contIPv4, contIPv6] = prevResult ? selectContainerIps(prevResult, opts.ifname) : [];
  const out: PortMapConfig = {
    name: conf.name,
    containerId: opts.containerId,
    backend,
    snat: conf.snat ?? true,
    masqAll: conf.masqAll ?? false,
    markMasqBit,
    externalSetMarkChain: conf.externalSetMarkChain ?? undefined,
    conditionsV4: conf.conditionsV4 ?? [],
    conditionsV6: conf.conditionsV6 ?? [],
    mappings,
    backendOptions: collectBackendOptions(conf),
    prevResult,
    contIPv4,
    contIPv6,
  };
  if (backend) checkBackendOptions(out, backend);
  return out;
}

/** Whether a mapping applies to a container address family: a hostIP of the other family skips it. */
export function mappingApplies(pm: PortMapping, family: 4 | 6): boolean {
  if (!pm.hostIP) return true;
  return (isIPv4(pm.hostIP) ? 4 : 6) === family;
}

/** The mapping's destination address match, or undefined for no hostIP or an unspecified one (0.0.0.0, ::). */
export function hostIpMatch(pm: PortMapping): string | undefined {
  if (!pm.hostIP) return undefined;
  if (isIPv4(pm.hostIP)) return pm.hostIP === "0.0.0.0" ? undefined : pm.hostIP;
  return ipv6Text(pm.hostIP) === "::" ? undefined : pm.hostIP;
}

/** `ip:port`, with IPv6 bracketed, as iptables and nft write a DNAT destination. */
export function ipPort(net: ContainerNet, port: number): string {
  return net.family === 6 ? `[${net.ip}]:${port}` : `${net.ip}:${port}`;
}
