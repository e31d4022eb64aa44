import { containerNetOf, type PortMapNetConf, parseConfig } from "../../plugins/portmap/config.js";

/**
 * The reference's portmap test vectors, shared by its iptables and nftables tests
 * (portmap_iptables_test.go, portmap_nftables_test.go): the mappings, the container's networks and the
 * config they parse ("test" network, interface "foo").
 */

export const referenceMappings = [
  { hostPort: 8080, containerPort: 80, protocol: "tcp" },
  { hostPort: 8081, containerPort: 80, protocol: "tcp" },
  { hostPort: 8080, containerPort: 81, protocol: "udp" },
  { hostPort: 8082, containerPort: 82, protocol: "udp" },
  { hostPort: 8083, containerPort: 83, protocol: "tcp", hostIP: "192.168.0.2" },
  { hostPort: 8084, containerPort: 84, protocol: "tcp", hostIP: "0.0.0.0" },
  { hostPort: 8085, containerPort: 85, protocol: "tcp", hostIP: "2001:db8:a::1" },
  { hostPort: 8086, containerPort: 86, protocol: "tcp", hostIP: "::" },
];

export const net4 = containerNetOf("10.0.0.2/24")!;
export const net6 = containerNetOf("2001:db8::2/64")!;

/** The parsed config of the reference tests for `containerId`, with `extra` keys. */
export function referenceConf(containerId: string, extra: Partial<PortMapNetConf>, version = "1.0.0") {
  const doc: PortMapNetConf = { cniVersion: version, name: "test", type: "portmap", ...extra };
  return parseConfig(doc, { containerId, ifname: "foo", checkMappings: true });
}
