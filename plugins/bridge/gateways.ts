import type { Result } from "../../shared/cni/types.js";
import {
  cidrEqual,
  type Family,
  familyOfText,
  firstHost,
  formatIp,
  parseCidr,
  parseIp,
  tryParseCidr,
} from "../../shared/net/ipaddr.js";
import type { BridgeSettings } from "./config.js";

/** The bridge-side gateway addresses of one family ("10.244.1.1/24"). */
export interface FamilyGateways {
  family: Family;
  gws: string[];
}

/**
 * calcGateways: points every IP at the container interface (index 2), fills in the gateway as network+1
 * when IPAM gave none and the bridge is a gateway, adds one default route per family when
 * isDefaultGateway and no default route with a gateway exists, and collects the bridge addresses
 * (gateway with the pod prefix length). Mutates `result` as the reference does.
 */
export function calcGateways(
  result: Result,
  n: Pick<BridgeSettings, "isGW" | "isDefaultGW">,
): FamilyGateways[] {
  const byFamily = new Map<Family, FamilyGateways & { defaultRouteFound: boolean }>();
  result.routes ??= [];
  for (const ipc of result.ips ?? []) {
    const family = familyOfText(ipc.address);
    let g = byFamily.get(family);
    if (!g) {
      g = { family, gws: [], defaultRouteFound: false };
      byFamily.set(family, g);
    }
    ipc.interface = 2;
    if (!ipc.gateway && n.isGW) ipc.gateway = formatIp(firstHost(parseCidr(ipc.address)));
    if (n.isDefaultGW) {
      const dflt = family === 4 ? "0.0.0.0/0" : "::/0";
      if (!g.defaultRouteFound) {
        g.defaultRouteFound = result.routes.some((r) => r.gw && sameDst(r.dst, dflt));
      }
      if (!g.defaultRouteFound) {
        // Go appends GW: ipc.Gateway even when it is nil (a gatewayless default route).
        result.routes.push(ipc.gateway ? { dst: dflt, gw: ipc.gateway } : { dst: dflt });
        g.defaultRouteFound = true;
      }
    }
    if (n.isGW && ipc.gateway) {
      g.gws.push(`${formatIp(parseIp(ipc.gateway))}/${parseCidr(ipc.address).prefix}`);
    }
  }
  return [...byFamily.values()]
    .sort((a, b) => a.family - b.family)
    .map(({ family, gws }) => ({ family, gws }));
}

function sameDst(a: string, b: string): boolean {
  const x = tryParseCidr(a);
  const y = tryParseCidr(b);
  return x !== undefined && y !== undefined && cidrEqual(x, y);
}
