import { loadCniArgs } from "../../shared/cni/args.js";
import { CniError, ErrorCode } from "../../shared/cni/errors.js";
import type { NetConf } from "../../shared/cni/types.js";

/** The bridge plugin's network configuration keys (the reference's NetConf, plugins/main/bridge). */
export interface BridgeNetConf extends NetConf {
  bridge?: string;
  isGateway?: boolean;
  isDefaultGateway?: boolean;
  forceAddress?: boolean;
  ipMasq?: boolean;
  ipMasqBackend?: string;
  mtu?: number;
  hairpinMode?: boolean;
  promiscMode?: boolean;
  vlan?: number;
  vlanTrunk?: Array<{ id?: number | null; minID?: number | null; maxID?: number | null } | null>;
  preserveDefaultVlan?: boolean;
  macspoofchk?: boolean;
  enabledad?: boolean;
  disableContainerInterface?: boolean;
  portIsolation?: boolean;
}

const bool = { type: "boolean" };
const int = { type: "integer" };
const str = { type: "string" };
const nullableInt = { type: ["integer", "null"] };

/**
 * The reference's NetConf (plugins/main/bridge) as a schema: skel decodes the config into it as
 * json.Unmarshal does (case-insensitive keys; a wrong type fails with Go's text, wrapped in
 * "failed to load netconf" as loadNetConf wraps it). Unknown keys are ignored.
 */
export const bridgeSchema = {
  type: "object",
  properties: {
    bridge: str,
    isGateway: bool,
    isDefaultGateway: bool,
    forceAddress: bool,
    ipMasq: bool,
    ipMasqBackend: { type: ["string", "null"] },
    mtu: int,
    hairpinMode: bool,
    promiscMode: bool,
    vlan: int,
    vlanTrunk: {
      type: "array",
      items: {
        type: ["object", "null"],
        title: "main.VlanTrunk",
        properties: { minID: nullableInt, maxID: nullableInt, id: nullableInt },
      },
    },
    preserveDefaultVlan: bool,
    macspoofchk: bool,
    enabledad: bool,
    disableContainerInterface: bool,
    portIsolation: bool,
    args: {
      type: "object",
      properties: { cni: { type: "object", title: "main.BridgeArgs", properties: { mac: str } } },
    },
    runtimeConfig: { type: "object", properties: { mac: str } },
  },
};

/** The configuration with defaults applied and derived values worked out, as cmdAdd uses it. */
export interface BridgeSettings {
  name: string;
  cniVersion: string;
  brName: string;
  isGW: boolean;
  isDefaultGW: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  ipMasqBackend: "iptables" | "nftables" | undefined;
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  vlan: number;
  vlans: number[];
  preserveDefaultVlan: boolean;
  macSpoofChk: boolean;
  enableDad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** Container MAC: runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC. */
  mac: string | undefined;
  ipamType: string;
  /** An IPAM type is set: addresses, routes and gateways are configured (else the pod is L2 only). */
  isLayer3: boolean;
}

const fail = (msg: string) => new CniError(ErrorCode.Internal, msg);

/** collectVlanTrunk: the trunk IDs deduplicated and sorted, with the reference's validation errors. */
export function collectVlanTrunk(trunk: BridgeNetConf["vlanTrunk"]): number[] {
  if (!trunk) return [];
  const ids = new Set<number>();
  for (const item of trunk) {
    // A null entry is a nil *VlanTrunk, which the reference dereferences and panics on: skip it.
    if (!item) continue;
    const hasMin = item.minID !== undefined && item.minID !== null;
    const hasMax = item.maxID !== undefined && item.maxID !== null;
    if (hasMin && hasMax) {
      const min = item.minID!;
      const max = item.maxID!;
      if (min <= 0 || min > 4094) throw fail("incorrect trunk minID parameter");
      if (max <= 0 || max > 4094) throw fail("incorrect trunk maxID parameter");
      if (max < min) throw fail("minID is greater than maxID in trunk parameter");
      for (let v = min; v <= max; v++) ids.add(v);
    } else if (hasMax) {
      throw fail("minID and maxID should be configured simultaneously, minID is missing");
    } else if (hasMin) {
      throw fail("minID and maxID should be configured simultaneously, maxID is missing");
    }
    if (item.id !== undefined && item.id !== null) {
      if (item.id <= 0 || item.id > 4094) throw fail("incorrect trunk id parameter");
      ids.add(item.id);
    }
  }
  return [...ids].sort((a, b) => a - b);
}

/** loadNetConf plus cmdAdd's preamble: defaults, validation, MAC precedence. */
export function loadNetConf(conf: BridgeNetConf, cniArgs: string): BridgeSettings {
  const vlan = conf.vlan ?? 0;
  if (vlan < 0 || vlan > 4094) throw fail(`invalid VLAN ID ${vlan} (must be between 0 and 4094)`);
  const vlans = collectVlanTrunk(conf.vlanTrunk);
  if (vlan > 0 && vlans.length > 0) throw fail("cannot set vlan and vlanTrunk at the same time");

  let mac: string | undefined;
  if (cniArgs !== "") {
    const env = loadCniArgs(cniArgs, ["MAC"]);
    if (env.MAC) mac = env.MAC;
  }
  if (typeof conf.args?.cni?.mac === "string" && conf.args.cni.mac !== "") mac = conf.args.cni.mac;
  if (typeof conf.runtimeConfig?.mac === "string" && conf.runtimeConfig.mac !== "")
    mac = conf.runtimeConfig.mac;
  if (mac !== undefined) mac = normaliseMac(mac);

  const backend = conf.ipMasqBackend;
  if (backend !== undefined && backend !== "iptables" && backend !== "nftables") {
    throw fail(`unknown ipmasq backend ${JSON.stringify(backend)}`);
  }
  const ipamType = conf.ipam?.type ?? "";
  const s: BridgeSettings = {
    name: conf.name,
    cniVersion: conf.cniVersion,
    brName: conf.bridge || "cni0",
    isDefaultGW: conf.isDefaultGateway === true,
    isGW: conf.isGateway === true || conf.isDefaultGateway === true,
    forceAddress: conf.forceAddress === true,
    ipMasq: conf.ipMasq === true,
    ipMasqBackend: backend,
    mtu: conf.mtu ?? 0,
    hairpinMode: conf.hairpinMode === true,
    promiscMode: conf.promiscMode === true,
    vlan,
    vlans,
    // The reference defaults this to true "to maintain existing behavior".
    preserveDefaultVlan: conf.preserveDefaultVlan ?? true,
    macSpoofChk: conf.macspoofchk === true,
    enableDad: conf.enabledad === true,
    disableContainerInterface: conf.disableContainerInterface === true,
    portIsolation: conf.portIsolation === true,
    mac,
    ipamType,
    isLayer3: ipamType !== "",
  };
  if (s.hairpinMode && s.promiscMode) {
    throw fail("cannot set hairpin mode and promiscuous mode at the same time");
  }
  if (s.disableContainerInterface && s.isLayer3) {
    throw fail("cannot use IPAM when DisableContainerInterface flag is set");
  }
  if (s.mtu < 0) throw fail(`invalid MTU ${s.mtu}`);
  return s;
}

/** net.ParseMAC accepts "aa:bb:..", "aa-bb-.." and is case-insensitive; the kernel wants colons. */
export function normaliseMac(mac: string): string {
  const m = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/.exec(mac);
  if (!m) throw fail(`invalid MAC address ${JSON.stringify(mac)}`);
  return mac.replace(/-/g, ":").toLowerCase();
}
