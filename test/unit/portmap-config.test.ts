import { endianness } from "node:os";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  backendOfConditions,
  containerNetOf,
  hostIpMatch,
  mappingApplies,
  type PortMapNetConf,
  parseConfig,
  parseHostIp,
  portMapSchema,
  selectContainerIps,
} from "../../plugins/portmap/config.js";
import { CniError } from "../../shared/cni/errors.js";
import { netConfSchema } from "../../shared/cni/schemas.js";
import { validateSchema } from "../../shared/cni/validate.js";
import { mainTableInterface } from "../../shared/net/route-lookup.js";
import { cniErrorOf } from "../helpers/cni-error.js";

const tcp = (hostPort: number, containerPort = 80) => ({ hostPort, containerPort, protocol: "tcp" });

function parse(extra: Partial<PortMapNetConf>, checkMappings = true) {
  const doc: PortMapNetConf = { cniVersion: "1.0.0", name: "net", type: "portmap", ...extra };
  return parseConfig(doc, { containerId: "ctr", ifname: "eth0", checkMappings });
}

const t = suite("portmap config");

t("defaults: snat on, mark bit 13, no backend chosen, no masqAll", () => {
  const c = parse({});
  assert.is(c.snat, true);
  assert.is(c.markMasqBit, 13);
  assert.is(c.backend, undefined);
  assert.is(c.masqAll, false);
  assert.equal(c.mappings, []);
});

t("markMasqBit outside 0..31 is rejected with the reference's text", () => {
  for (const bit of [-1, 32]) {
    const e = cniErrorOf(() => parse({ markMasqBit: bit }));
    assert.is(e.msg, "MasqMarkBit must be between 0 and 31");
    assert.is(e.code, 7);
  }
  assert.is(parse({ markMasqBit: 0 }).markMasqBit, 0);
  assert.is(parse({ markMasqBit: 31 }).markMasqBit, 31);
});

t("externalSetMarkChain and markMasqBit are mutually exclusive", () => {
  const e = cniErrorOf(() => parse({ markMasqBit: 5, externalSetMarkChain: "KUBE-MARK-MASQ" }));
  assert.is(e.msg, "Cannot specify externalSetMarkChain and markMasqBit");
});

t("invalid ports and protocols are config errors (code 7)", () => {
  const cases: Array<[object, string]> = [
    [{ hostPort: 8080, containerPort: 0, protocol: "tcp" }, "Invalid container port number: 0"],
    [{ hostPort: 0, containerPort: 80, protocol: "tcp" }, "Invalid host port number: 0"],
    [{ hostPort: -5, containerPort: 80, protocol: "tcp" }, "Invalid host port number: -5"],
    [{ hostPort: 70000, containerPort: 80, protocol: "tcp" }, "Invalid host port number: 70000"],
    [{ hostPort: 8080, containerPort: 80, protocol: "icmp" }, 'Invalid protocol: "icmp"'],
    [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "nope" }, "Invalid host IP: nope"],
  ];
  for (const [pm, msg] of cases) {
    const e = cniErrorOf(() => parse({ runtimeConfig: { portMappings: [pm as never] } }));
    assert.is(e.msg, msg);
    assert.is(e.code, 7);
  }
});

t("DEL does not judge the mappings (teardown needs only name and ID)", () => {
  const c = parse(
    { runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 0, protocol: "TCP" }] } },
    false,
  );
  assert.is(c.mappings[0]!.protocol, "tcp");
});

t("hostIP is read as Go's net.ParseIP (Go >= 1.17): no leading zeros, no zone, v4-mapped is IPv4", () => {
  assert.equal(parseHostIp("10.0.0.1"), { family: 4, ip: "10.0.0.1" });
  assert.equal(parseHostIp("::ffff:10.0.0.1"), { family: 4, ip: "10.0.0.1" });
  assert.equal(parseHostIp("2001:DB8:0::1"), { family: 6, ip: "2001:db8::1" });
  for (const bad of ["01.2.3.4", "1.2.3.04", "::ffff:01.2.3.4", "fe80::1%eth0", "1.2.3.4/32", "", "x"]) {
    assert.is(parseHostIp(bad), undefined, bad);
  }
  const pm = (hostIP: string) => ({
    runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: "tcp", hostIP }] },
  });
  assert.is(cniErrorOf(() => parse(pm("01.2.3.4"))).msg, "Invalid host IP: 01.2.3.4");
  // ADD keeps the address in Go's String() form, so iptables of the right family accepts it.
  assert.is(parse(pm("::ffff:10.0.0.1")).mappings[0]!.hostIP, "10.0.0.1");
});

t("DEL and GC: a hostIP Go cannot parse counts as IPv6 and never throws (the reference's nil IP)", () => {
  const c = parse(
    {
      runtimeConfig: {
        portMappings: [{ hostPort: 1, containerPort: 1, protocol: "tcp", hostIP: "01.2.3.4" }],
      },
    },
    false,
  );
  const pm = c.mappings[0]!;
  assert.is(mappingApplies(pm, 4), false);
  assert.is(mappingApplies(pm, 6), true);
  assert.is(hostIpMatch(pm), "01.2.3.4");
  assert.is(hostIpMatch({ ...pm, hostIP: "::" }), undefined);
  assert.is(hostIpMatch({ ...pm, hostIP: "::ffff:0.0.0.0" }), undefined);
});

t("teardown mode: config problems that cannot change what DEL removes are reported, not thrown", () => {
  const ignored: string[] = [];
  const doc: PortMapNetConf = {
    cniVersion: "1.0.0",
    name: "net",
    type: "portmap",
    markMasqBit: 40,
    externalSetMarkChain: "X",
    backend: "ebpf",
    prevResult: { cniVersion: "9.9.9", ips: [] } as never,
  };
  const c = parseConfig(doc, {
    containerId: "ctr",
    ifname: "eth0",
    checkMappings: false,
    teardown: { onIgnored: (p) => ignored.push(p) },
  });
  assert.is(c.backend, undefined);
  assert.is(c.markMasqBit, 13);
  assert.is(c.prevResult, undefined);
  assert.equal(c.backendOptions, { iptables: [], nftables: [] });
  assert.is(ignored.length, 4, ignored.join("; "));
  assert.match(ignored.join("; "), /could not parse prevResult/);
  assert.match(ignored.join("; "), /unrecognized backend "ebpf"/);
  // The same config is still refused where it would shape what is installed.
  assert.throws(() => parseConfig(doc, { containerId: "ctr", ifname: "eth0", checkMappings: false }));
});

t("protocols are lower-cased (kubelet sends lowercase; iptables would accept either)", () => {
  assert.is(
    parse({ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: "UDP" }] } })
      .mappings[0]!.protocol,
    "udp",
  );
});

t("backend: unknown name and options of the other backend", () => {
  assert.is(cniErrorOf(() => parse({ backend: "ebpf" })).msg, 'unrecognized backend "ebpf"');
  assert.is(
    cniErrorOf(() => parse({ backend: "nftables", externalSetMarkChain: "X" })).msg,
    "nftables backend was requested but configuration contains iptables-specific options [externalSetMarkChain]",
  );
  assert.is(
    cniErrorOf(() =>
      parse({ backend: "nftables", conditionsV4: ["-s", "1.2.3.4"], conditionsV6: ["!", "-d", "::1"] }),
    ).msg,
    "nftables backend was requested but configuration contains iptables-specific options [conditionsV4 conditionsV6]",
  );
  assert.is(
    cniErrorOf(() => parse({ backend: "iptables", conditionsV6: ["ip6", "saddr", "::1"] })).msg,
    "iptables backend was requested but configuration contains nftables-specific options [conditionsV6]",
  );
  assert.is(parse({ backend: "nftables", conditionsV4: ["ip", "saddr", "1.2.3.4"] }).backend, "nftables");
});

t("condition syntax detection", () => {
  assert.is(backendOfConditions(undefined), undefined);
  assert.is(backendOfConditions([]), undefined);
  assert.is(backendOfConditions([""]), undefined);
  assert.is(backendOfConditions(["-m", "foo"]), "iptables");
  assert.is(backendOfConditions(["!", "-s", "x"]), "iptables");
  assert.is(backendOfConditions(["ip", "saddr", "x"]), "nftables");
});

t("container IP selection: first of each family, only CNI_IFNAME in the sandbox", () => {
  const [v4, v6] = selectContainerIps(
    {
      cniVersion: "1.0.0",
      interfaces: [
        { name: "cni0" },
        { name: "veth1" },
        { name: "eth0", sandbox: "/var/run/netns/x" },
        { name: "net1", sandbox: "/x" },
      ],
      ips: [
        { address: "10.1.0.1/24", interface: 0 },
        { address: "10.2.0.5/24", interface: 3 },
        { address: "10.3.0.5/16", interface: 2 },
        { address: "10.4.0.5/16", interface: 2 },
        { address: "2001:0db8:0000::0005/64", interface: 2 },
        { address: "2001:db8::6/64" },
      ],
    },
    "eth0",
  );
  assert.equal(v4, { family: 4, ip: "10.3.0.5", prefix: 16, cidr: "10.3.0.5/16" });
  assert.equal(v6, { family: 6, ip: "2001:db8::5", prefix: 64, cidr: "2001:db8::5/64" });
});

t("an IP with no interface, or an out-of-range index, is accepted", () => {
  const [v4] = selectContainerIps(
    { cniVersion: "1.0.0", ips: [{ address: "10.9.0.2/24", interface: 7 }] },
    "eth0",
  );
  assert.is(v4?.cidr, "10.9.0.2/24");
  const [, v6] = selectContainerIps({ cniVersion: "1.0.0", ips: [{ address: "fd00::2/64" }] }, "eth0");
  assert.is(v6?.ip, "fd00::2");
});

t("a prevResult in an old version is read (0.2.0 ip4 block)", () => {
  const c = parse({ cniVersion: "0.2.0", prevResult: { cniVersion: "0.2.0", ip4: { ip: "10.5.0.7/24" } } });
  assert.is(c.contIPv4?.cidr, "10.5.0.7/24");
});

t("IPv4-mapped IPv6 addresses are IPv4, as Go's To4 says", () => {
  assert.equal(containerNetOf("::ffff:10.0.0.9/24")?.family, 4);
  assert.is(containerNetOf("not-an-ip/24"), undefined);
});

t("schema: wrong types are code 7", async () => {
  const schema = { allOf: [netConfSchema, portMapSchema] };
  for (const bad of [
    { snat: "yes" },
    { markMasqBit: 1.5 },
    { conditionsV4: "x" },
    { runtimeConfig: { portMappings: [{ hostPort: "80", containerPort: 80, protocol: "tcp" }] } },
  ]) {
    try {
      await validateSchema(schema, { name: "n", type: "portmap", ...bad });
      assert.unreachable(`accepted ${JSON.stringify(bad)}`);
    } catch (err) {
      assert.instance(err, CniError);
      assert.is((err as CniError).code, 7);
    }
  }
  await validateSchema(schema, {
    name: "n",
    markMasqBit: null,
    conditionsV4: null,
    runtimeConfig: { portMappings: [tcp(80)] },
  });
});

t.run();

const route = suite("portmap host interface lookup");

// /proc/net/route of a little-endian host: default via eth0, 10.214.7.0/24 on cni0, 10.214.0.0/16 on
// flannel.1, a down route, and an equal-prefix route with a worse metric.
const PROC_NET_ROUTE = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
flannel.1	0000D60A	0000D60A	0003	0	0	0	0000FFFF	0	0	0
cni0	0007D60A	00000000	0001	0	0	0	00FFFFFF	0	0	0
slow0	0007D60A	00000000	0001	0	0	100	00FFFFFF	0	0	0
down0	0008D60A	00000000	0000	0	0	0	00FFFFFF	0	0	0
`;

route("longest prefix wins, then the lowest metric; routes not up are ignored", () => {
  if (endianness() !== "LE") return;
  assert.is(mainTableInterface(PROC_NET_ROUTE, "10.214.7.2"), "cni0");
  assert.is(mainTableInterface(PROC_NET_ROUTE, "10.214.9.2"), "flannel.1");
  assert.is(mainTableInterface(PROC_NET_ROUTE, "10.214.8.2"), "flannel.1");
  assert.is(mainTableInterface(PROC_NET_ROUTE, "192.0.2.77"), "eth0");
  assert.is(mainTableInterface("Iface\tDestination\n", "10.0.0.1"), undefined);
});

route.run();
