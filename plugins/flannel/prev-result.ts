import type { Result } from "../../shared/cni/types.js";
import { familyOfText } from "../../shared/net/ipaddr.js";

/**
 * flannel's delegate routes carry no `gw`: bridge (ipam.ConfigureIface) installs each gateway-less route
 * via the gateway of the same family from the result's ips. The reference bridge's CHECK
 * (ip.ValidateExpectedRoute) then filters the pod's routes on gw = nil and fails on every flannel pod
 * ("Expected Route {Dst:10.244.0.0/16 GW:<nil>} not found in routing table"); the reference flannel
 * never delegated CHECK, so nobody saw it. Before forwarding CHECK, the prevResult's gateway-less routes
 * get the gateway ConfigureIface used: that of the last address of the same family that has one. The
 * prevResult is the decoded one (results.ts), so malformed entries were refused by name before this.
 */
export function withRouteGateways(prevResult: Result): Result {
  const gateway: Record<4 | 6, string | undefined> = { 4: undefined, 6: undefined };
  for (const ip of prevResult.ips ?? []) {
    if (ip.gateway) gateway[familyOfText(ip.address)] = ip.gateway;
  }
  if (!prevResult.routes) return prevResult;
  const routes = prevResult.routes.map((r) => {
    if (r.gw) return r;
    const gw = gateway[familyOfText(r.dst)];
    return gw ? { ...r, gw } : r;
  });
  return { ...prevResult, routes };
}
