import type { Result } from "../cni/types.js";
import { addrAdd } from "./addr.js";
import type { IpCommand } from "./ip.js";
import { familyOfText } from "./ipaddr.js";
import { linkSetUp } from "./link.js";
import { routeAdd } from "./route.js";
import { ifaceKey, type SysctlWrite } from "./sysctl.js";

/**
 * The reference's ipam.ConfigureIface (shared by bridge and ptp) as batch commands for the pod's
 * namespace: the addresses of `result` that point at `ifname`, the link up, then the routes (a route
 * without a gateway uses its family's gateway). IPv6 needs disable_ipv6=0 on lo and the interface and
 * keep_addr_on_down=1, written as sysctls in the same process.
 */
export interface IfaceConfig {
  cmds: IpCommand[];
  sysctls: SysctlWrite[];
}

export function configureIface(ifname: string, result: Result, opts: { up?: boolean } = {}): IfaceConfig {
  const interfaces = result.interfaces ?? [];
  if (interfaces.length === 0) throw new Error("no interfaces to configure");
  const cmds: IpCommand[] = [];
  const sysctls: SysctlWrite[] = [];
  const gw: Partial<Record<4 | 6, string>> = {};
  let v6 = false;
  for (const ip of result.ips ?? []) {
    if (ip.interface === undefined || ip.interface === null) continue;
    if (interfaces[ip.interface]?.name !== ifname) {
      throw new Error(
        `failed to add IP addr ${ip.address} to ${JSON.stringify(ifname)}: invalid interface index`,
      );
    }
    const family = familyOfText(ip.address);
    if (family === 6 && !v6) {
      v6 = true;
      for (const dev of ["lo", ifname]) sysctls.push({ key: ifaceKey(6, dev, "disable_ipv6"), value: "0" });
      sysctls.push({ key: ifaceKey(6, ifname, "keep_addr_on_down"), value: "1" });
    }
    cmds.push(
      addrAdd(ip.address, ifname, `failed to add IP addr ${ip.address} to ${JSON.stringify(ifname)}`),
    );
    if (ip.gateway && !gw[family]) gw[family] = ip.gateway;
  }
  if (opts.up !== false) cmds.push(linkSetUp(ifname, `failed to set ${JSON.stringify(ifname)} UP`));
  for (const r of result.routes ?? []) {
    const family = familyOfText(r.dst);
    const via = r.gw ?? gw[family];
    cmds.push(
      routeAdd({
        dst: r.dst,
        dev: ifname,
        ...(via ? { gw: via } : {}),
        ...(r.priority ? { metric: r.priority } : {}),
        ...(r.table ? { table: r.table } : {}),
        ...(r.scope !== undefined ? { scope: r.scope } : {}),
      }),
    );
  }
  return { cmds, sysctls };
}
