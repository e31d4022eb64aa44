import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import { parseResult } from "../../shared/cni/results.js";
import type { JsonSchema } from "../../shared/cni/schemas.js";
import type { NetConf, PortMapping, Result } from "../../shared/cni/types.js";
import { formatCidr, formatIp, tryParseCidr, tryParseIp } from "../../shared/net/ipaddr.js";

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
  title: "main.PortMapConf",
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
    // The reference does not check: net.ParseIP's nil reads as IPv6 there, so a v4 pod silently loses
    // the mapping and a v6 pod fails half-way in ip6tables. Refused here before anything is installed.
    const ip = parseHostIp(pm.hostIP);
    if (!ip) throw invalid(`Invalid host IP: ${pm.hostIP}`);
    out.hostIP = ip.ip;
  }
  return out;
}

/**
 * Go's net.ParseIP followed by net.IP.String(): dotted decimal IPv4 without leading zeros (Go >= 1.17;
 * the reference v1.1.1 was built with Go 1.19, HEAD with 1.25), IPv6 without a zone, IPv4-mapped IPv6
 * read as IPv4; printed RFC 5952 for IPv6, as a dotted quad for IPv4. Undefined where ParseIP returns
 * nil.
 */
export function parseHostIp(ip: string): { family: 4 | 6; ip: string } | undefined {
  const parsed = tryParseIp(ip);
  return parsed && { family: parsed.family, ip: formatIp(parsed) };
}

/** A prevResult address (types.IPNet: net.ParseCIDR with the host bits kept). */
export function containerNetOf(address: string): ContainerNet | undefined {
  if (typeof address !== "string") return undefined;
  const parsed = tryParseCidr(address);
  if (!parsed) return undefined;
  const { ip, prefix } = parsed;
  return { family: ip.family, ip: formatIp(ip), prefix, cidr: formatCidr(parsed) };
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
      // A null entry decodes to Go's zero Interface: no name, no sandbox, so not this one.
      const iface = ifaces[idx];
      if (iface?.name !== ifname || !iface?.sandbox) continue;
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
  /**
   * DEL and GC: what they remove follows from the network name and the container ID (and the backend)
   * alone, so nothing else in the config may stop them; a problem the ADD would have refused (a bad mark
   * bit, an unknown backend, a prevResult that does not parse) is reported to `onIgnored` instead, and
   * a DEL after the ADD that refused that config succeeds (the reference fails it on every retry).
   */
  teardown?: { onIgnored(problem: string): void };
}

/** The reference's parseConfig: defaults, the markMasqBit/externalSetMarkChain rules, backend and IPs. */
export function parseConfig(conf: PortMapNetConf, opts: ParseOptions): PortMapConfig {
  // Strict for ADD, CHECK and STATUS; in teardown mode the problem is reported and the default used.
  const problem = (err: CniError): void => {
    if (!opts.teardown) throw err;
    opts.teardown.onIgnored(err.msg);
  };
  let prevResult: Result | undefined;
  if (conf.prevResult !== undefined && conf.prevResult !== null) {
    try {
      prevResult = parseResult(conf.prevResult, conf.cniVersion);
    } catch (err) {
      problem(
        new CniError(ErrorCode.DecodingFailure, `could not parse prevResult: ${(err as Error).message}`, "", {
          cause: err,
        }),
      );
    }
  }
  let markMasqBit = conf.markMasqBit ?? DEFAULT_MARK_BIT;
  if (conf.markMasqBit != null && conf.externalSetMarkChain != null) {
    problem(invalid("Cannot specify externalSetMarkChain and markMasqBit"));
  }
  if (markMasqBit < 0 || markMasqBit > 31) {
    problem(invalid("MasqMarkBit must be between 0 and 31"));
    markMasqBit = DEFAULT_MARK_BIT;
  }

  let backend: BackendName | undefined;
  if (conf.backend !== undefined && conf.backend !== null) {
    if (conf.backend === "iptables" || conf.backend === "nftables") backend = conf.backend;
    else problem(invalid(`unrecognized backend ${JSON.stringify(conf.backend)}`));
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
  if (backend) {
    try {
      checkBackendOptions(out, backend);
    } catch (err) {
      problem(err as CniError);
    }
  }
  // A teardown never needs the options of the other backend: they only shape rules it finds by name.
  if (opts.teardown) out.backendOptions = { iptables: [], nftables: [] };
  return out;
}

/**
 * A mapping's hostIP as the reference's rule builders read it: `net.ParseIP(hostIP)`, whose nil (an
 * address Go cannot parse) has no To4() and so counts as IPv6, and is not unspecified. ADD and CHECK
 * refuse such addresses up front; DEL and GC only build rules to find what to remove, and must not fail
 * on them (they used to, on every retry).
 */
function hostIpOf(pm: PortMapping): { family: 4 | 6; ip: string; unspecified: boolean } | undefined {
  if (!pm.hostIP) return undefined;
  const ip = parseHostIp(pm.hostIP);
  if (!ip) return { family: 6, ip: pm.hostIP, unspecified: false };
  return { ...ip, unspecified: ip.ip === "0.0.0.0" || ip.ip === "::" };
}

/** Whether a mapping applies to a container address family: a hostIP of the other family skips it. */
export function mappingApplies(pm: PortMapping, family: 4 | 6): boolean {
  const ip = hostIpOf(pm);
  return !ip || ip.family === family;
}

/** The mapping's destination address match, or undefined for no hostIP or an unspecified one (0.0.0.0, ::). */
export function hostIpMatch(pm: PortMapping): string | undefined {
  const ip = hostIpOf(pm);
  return ip && !ip.unspecified ? ip.ip : undefined;
}

/** `ip:port`, with IPv6 bracketed, as iptables and nft write a DNAT destination. */
export function ipPort(net: ContainerNet, port: number): string {
  return net.family === 6 ? `[${net.ip}]:${port}` : `${net.ip}:${port}`;
}
