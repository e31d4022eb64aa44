import { ensureSysctl, ifaceKey } from "../../shared/net/sysctl.js";

/**
 * Localhost access to a hostPort (`127.0.0.1:<hostPort>` on the node) sends packets with a 127/8
 * source across a routing boundary, which the kernel treats as martian unless `route_localnet` is set
 * on the outgoing interface. The reference sets it on the interface routing to the container (e.g. the
 * bridge). IPv6 has no equivalent, so `::1` is not mapped.
 */

/** Sets net.ipv4.conf.<ifname>.route_localnet=1 unless it already is. */
export function enableRouteLocalnet(ifname: string): void {
  if (ifname.includes("/") || ifname === "." || ifname === "..")
    throw new Error(`invalid interface name ${ifname}`);
  ensureSysctl(ifaceKey(4, ifname, "route_localnet"), "1");
}
