import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { PortMapNetConf } from "../../plugins/portmap/config.js";
import { addCommands, udpPortsOf } from "../../plugins/portmap/nft-backend.js";
import type { NftRule } from "../../shared/net/nft.js";
import { net4, net6, referenceConf, referenceMappings } from "../helpers/portmap-vectors.js";

// The reference's nftables test (portmap_nftables_test.go): same config, same container ID.
const CID = "icee6giejonei6so";
const mappings = referenceMappings;

const conf = (extra: Partial<PortMapNetConf>, version = "1.0.0") =>
  referenceConf(CID, { backend: "nftables", ...extra }, version);

const lines = (text: string) => text.trim().split("\n");

const t = suite("portmap nftables transaction");

for (const ver of ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]) {
  t(`[${ver}] IPv4 with snat and conditions, in knftables' order`, () => {
    const c = conf(
      {
        runtimeConfig: { portMappings: mappings },
        snat: true,
        conditionsV4: ["a", "b"],
        conditionsV6: ["c", "d"],
      },
      ver,
    );
    assert.equal(
      addCommands(c, net4),
      lines(`
add table ip cni_hostport { comment "CNI portmap plugin" ; }
add chain ip cni_hostport hostports
add chain ip cni_hostport hostip_hostports
add chain ip cni_hostport hostports_all
flush chain ip cni_hostport hostports_all
add rule ip cni_hostport hostports_all jump hostip_hostports
add rule ip cni_hostport hostports_all jump hostports
add chain ip cni_hostport prerouting { type nat hook prerouting priority -100 ; }
flush chain ip cni_hostport prerouting
add rule ip cni_hostport prerouting a b fib daddr type local jump hostports_all
add chain ip cni_hostport output { type nat hook output priority -100 ; }
flush chain ip cni_hostport output
add rule ip cni_hostport output a b fib daddr type local jump hostports_all
add chain ip cni_hostport masquerading { type nat hook postrouting priority 100 ; }
add rule ip cni_hostport hostports tcp dport 8080 dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8081 dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8080 dnat to 10.0.0.2:81 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8082 dnat to 10.0.0.2:82 comment "icee6giejonei6so"
add rule ip cni_hostport hostports ip daddr 192.168.0.2 tcp dport 8083 dnat to 10.0.0.2:83 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8084 dnat to 10.0.0.2:84 comment "icee6giejonei6so"
add rule ip cni_hostport masquerading ip saddr 10.0.0.2 ip daddr 10.0.0.2 masquerade comment "icee6giejonei6so"
add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.0.0.2 masquerade comment "icee6giejonei6so"
`),
    );
  });

  t(`[${ver}] IPv6 without snat: no masquerading chain`, () => {
    const c = conf(
      {
        runtimeConfig: { portMappings: mappings },
        snat: false,
        conditionsV4: ["a", "b"],
        conditionsV6: ["c", "d"],
      },
      ver,
    );
    assert.equal(
      addCommands(c, net6),
      lines(`
add table ip6 cni_hostport { comment "CNI portmap plugin" ; }
add chain ip6 cni_hostport hostports
add chain ip6 cni_hostport hostip_hostports
add chain ip6 cni_hostport hostports_all
flush chain ip6 cni_hostport hostports_all
add rule ip6 cni_hostport hostports_all jump hostip_hostports
add rule ip6 cni_hostport hostports_all jump hostports
add chain ip6 cni_hostport prerouting { type nat hook prerouting priority -100 ; }
flush chain ip6 cni_hostport prerouting
add rule ip6 cni_hostport prerouting c d fib daddr type local jump hostports_all
add chain ip6 cni_hostport output { type nat hook output priority -100 ; }
flush chain ip6 cni_hostport output
add rule ip6 cni_hostport output c d fib daddr type local jump hostports_all
add rule ip6 cni_hostport hostports tcp dport 8080 dnat to [2001:db8::2]:80 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports tcp dport 8081 dnat to [2001:db8::2]:80 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports udp dport 8080 dnat to [2001:db8::2]:81 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports udp dport 8082 dnat to [2001:db8::2]:82 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports ip6 daddr 2001:db8:a::1 tcp dport 8085 dnat to [2001:db8::2]:85 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports tcp dport 8086 dnat to [2001:db8::2]:86 comment "icee6giejonei6so"
`),
    );
  });
}

t("masqAll: one masquerade rule from any source, for each family", () => {
  const c = conf({ runtimeConfig: { portMappings: [mappings[0]!] }, masqAll: true });
  const masq4 = addCommands(c, net4).filter((l) => l.startsWith("add rule ip cni_hostport masquerading"));
  assert.equal(masq4, [
    'add rule ip cni_hostport masquerading ip saddr 0.0.0.0/0 ip daddr 10.0.0.2 masquerade comment "icee6giejonei6so"',
  ]);
  const masq6 = addCommands(c, net6).filter((l) => l.startsWith("add rule ip6 cni_hostport masquerading"));
  assert.equal(masq6, [
    'add rule ip6 cni_hostport masquerading ip6 saddr ::/0 ip6 daddr 2001:db8::2 masquerade comment "icee6giejonei6so"',
  ]);
  const plain = addCommands(conf({ runtimeConfig: { portMappings: [mappings[0]!] } }), net6);
  assert.equal(
    plain.filter((l) => l.includes("masquerade")),
    [
      'add rule ip6 cni_hostport masquerading ip6 saddr 2001:db8::2 ip6 daddr 2001:db8::2 masquerade comment "icee6giejonei6so"',
    ],
  );
});

t("a repeated ADD first deletes the container's existing rules by handle", () => {
  const c = conf({ runtimeConfig: { portMappings: [mappings[0]!] } });
  const stale: NftRule = {
    family: "ip",
    table: "cni_hostport",
    chain: "hostports",
    handle: 42,
    comment: CID,
    expr: [],
  };
  assert.is(addCommands(c, net4, [stale])[0], "delete rule ip cni_hostport hostports handle 42");
});

t("UDP host ports are read back from listed dnat rules", () => {
  const rule = (chain: string, proto: string, port: number): NftRule => ({
    family: "ip",
    table: "cni_hostport",
    chain,
    handle: 1,
    comment: CID,
    expr: [
      { match: { op: "==", left: { payload: { protocol: proto, field: "dport" } }, right: port } },
      { dnat: { addr: "10.0.0.2", port: 53 } },
    ],
  });
  assert.equal(
    udpPortsOf([
      rule("hostports", "udp", 5353),
      rule("hostports", "tcp", 8080),
      rule("hostip_hostports", "udp", 5354),
    ]),
    [5353, 5354],
  );
});

t.run();
