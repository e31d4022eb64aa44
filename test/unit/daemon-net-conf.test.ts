import { test } from "uvu";
import * as assert from "uvu/assert";
import { NetConfError, type NetworkConfig, parseNetConf } from "../../daemon/net-conf.js";

async function ok(doc: unknown): Promise<Omit<NetworkConfig, "raw">> {
  const { raw: _raw, ...cfg } = await parseNetConf(typeof doc === "string" ? doc : JSON.stringify(doc));
  return cfg;
}

async function err(doc: unknown): Promise<string> {
  try {
    await parseNetConf(typeof doc === "string" ? doc : JSON.stringify(doc));
  } catch (e) {
    assert.instance(e, NetConfError);
    return (e as Error).message;
  }
  assert.unreachable(`expected ${JSON.stringify(doc)} to be refused`);
  return "";
}

const VXLAN = { type: "vxlan", vni: 1, port: 0, directRouting: false, mtu: 0 };

test("kube-flannel's net-conf: defaults as flannel's CheckNetworkConfig sets them", async () => {
  assert.equal(await ok({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }), {
    enableIPv4: true,
    enableIPv6: false,
    network: "10.244.0.0/16",
    subnetLen: 24,
    subnetMin: "10.244.1.0",
    subnetMax: "10.244.255.0",
    ipv6SubnetLen: 0,
    backend: VXLAN,
  });
});

test("SubnetLen default: 24 for a /22 or larger, else prefix + 2; the first subnet is skipped", async () => {
  const cases: Array<[string, number, string, string]> = [
    ["10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"],
    ["10.0.0.0/22", 24, "10.0.1.0", "10.0.3.0"],
    ["10.0.0.0/23", 25, "10.0.0.128", "10.0.1.128"],
    ["10.0.0.0/26", 28, "10.0.0.16", "10.0.0.48"],
    ["10.0.0.0/28", 30, "10.0.0.4", "10.0.0.12"],
  ];
  for (const [network, len, min, max] of cases) {
    const c = await ok({ Network: network });
    assert.equal([c.subnetLen, c.subnetMin, c.subnetMax], [len, min, max], network);
  }
});

test("Network keeps no host bits (net.ParseCIDR), and 0.0.0.0/0 counts as unset", async () => {
  assert.is((await ok({ Network: "10.244.7.9/16" })).network, "10.244.0.0/16");
  assert.is(
    await err({ Network: "0.0.0.0/0" }),
    "please define a correct Network parameter in the flannel config (Network: an IPv4 CIDR such as 10.244.0.0/16)",
  );
  assert.is(
    await err({}),
    "please define a correct Network parameter in the flannel config (Network: an IPv4 CIDR such as 10.244.0.0/16)",
  );
});

test("a network smaller than /28 is refused with flannel's words", async () => {
  assert.is(
    await err({ Network: "10.0.0.0/29" }),
    "network is too small. Minimum useful network prefix is /28 (Network is 10.0.0.0/29)",
  );
});

test("SubnetLen: at most /30 and at least four subnets in the network", async () => {
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetLen: 31 }),
    "SubnetLen must be less than /31 (SubnetLen 31 with Network 10.0.0.0/16: allowed values: 18..30)",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetLen: 17 }),
    "network must be able to accommodate at least four subnets (SubnetLen 17 with Network 10.0.0.0/16: allowed values: 18..30)",
  );
  assert.is(
    await err({ Network: "10.0.0.0/29", SubnetLen: 30 }),
    "network must be able to accommodate at least four subnets (SubnetLen 30 with Network 10.0.0.0/29: no SubnetLen fits: Network must be /28 or larger)",
  );
  const c = await ok({ Network: "10.0.0.0/28", SubnetLen: 30 });
  assert.equal([c.subnetMin, c.subnetMax], ["10.0.0.4", "10.0.0.12"]);
  assert.is((await ok({ Network: "10.0.0.0/16", SubnetLen: 0 })).subnetLen, 24, "0 means the default");
});

test("SubnetMin / SubnetMax: inside the network, on a SubnetLen boundary, min not above max", async () => {
  const c = await ok({ Network: "10.0.0.0/16", SubnetMin: "10.0.10.0", SubnetMax: "10.0.20.0" });
  assert.equal([c.subnetMin, c.subnetMax], ["10.0.10.0", "10.0.20.0"]);
  assert.is(
    (await ok({ Network: "10.0.0.0/16", SubnetMin: "0.0.0.0" })).subnetMin,
    "10.0.1.0",
    "zero = unset",
  );
  const span = "allowed: 10.0.1.0 .. 10.0.255.0 on /24 boundaries";
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMin: "10.1.0.0" }),
    `SubnetMin is not in the range of the Network (SubnetMin 10.1.0.0, Network 10.0.0.0/16; ${span})`,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMax: "11.0.0.0" }),
    `SubnetMax is not in the range of the Network (SubnetMax 11.0.0.0, Network 10.0.0.0/16; ${span})`,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMin: "10.0.3.1" }),
    `SubnetMin is not on a SubnetLen boundary: 10.0.3.1 (${span})`,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMax: "10.0.3.128" }),
    `SubnetMax is not on a SubnetLen boundary: 10.0.3.128 (${span})`,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMin: "10.0.9.0", SubnetMax: "10.0.3.0" }),
    `SubnetMin 10.0.9.0 is above SubnetMax 10.0.3.0: no subnet can be leased (${span})`,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMin: "10.0.1" }),
    "SubnetMin: invalid IP address format",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetMax: "fc00::1" }),
    "SubnetMax: invalid IPv4 address format: fc00::1",
  );
});

test("address fields parse the JSON value's text, as flannel's UnmarshalJSON does", async () => {
  assert.is(await err({ Network: "garbage" }), "Network: invalid CIDR address: garbage");
  assert.is(await err({ Network: 5 }), "Network: invalid CIDR address: 5");
  assert.is(await err({ Network: "10.0.0.0" }), "Network: invalid CIDR address: 10.0.0.0");
  assert.is(await err({ Network: "fc00::/48" }), "Network: invalid IPv4 CIDR format: fc00::/48");
  // flannel decodes every address field, so a malformed IPv6Network fails even with IPv6 off.
  assert.is(await err({ Network: "10.0.0.0/16", IPv6Network: "x" }), "IPv6Network: invalid CIDR address: x");
});

test("IPv6 twins: default /64, prefix + 2 below /62, /124 smallest, /126 longest", async () => {
  const c = await ok({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fc00::/48" });
  assert.equal(
    [c.ipv6Network, c.ipv6SubnetLen, c.ipv6SubnetMin, c.ipv6SubnetMax],
    ["fc00::/48", 64, "fc00:0:0:1::", "fc00:0:0:ffff::"],
  );
  const small = await ok({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fc00::/120" });
  assert.equal(
    [small.enableIPv4, small.ipv6SubnetLen, small.ipv6SubnetMin, small.ipv6SubnetMax],
    [false, 122, "fc00::40", "fc00::c0"],
  );
  assert.is(small.network, undefined);
  assert.is(
    (await ok({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fc00::/63" })).ipv6SubnetLen,
    65,
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", EnableIPv6: true }),
    "please define a correct IPv6Network parameter in the flannel config (IPv6Network: an IPv6 CIDR such as fc00::/48)",
  );
  assert.is(
    await err({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fc00::/125" }),
    "IPv6Network is too small. Minimum useful network prefix is /124 (IPv6Network is fc00::/125)",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fc00::/48", IPv6SubnetLen: 127 }),
    "SubnetLen must be less than /127 (IPv6SubnetLen 127 with IPv6Network fc00::/48: allowed values: 50..126)",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fc00::/48", IPv6SubnetLen: 49 }),
    "network must be able to accommodate at least four subnets (IPv6SubnetLen 49 with IPv6Network fc00::/48: allowed values: 50..126)",
  );
  const span6 = "allowed: fc00:0:0:1:: .. fc00:0:0:ffff:: on /64 boundaries";
  assert.is(
    await err({
      Network: "10.0.0.0/16",
      EnableIPv6: true,
      IPv6Network: "fc00::/48",
      IPv6SubnetMin: "fc01::",
    }),
    `IPv6SubnetMin is not in the range of the IPv6Network (IPv6SubnetMin fc01::, IPv6Network fc00::/48; ${span6})`,
  );
  assert.is(
    await err({
      Network: "10.0.0.0/16",
      EnableIPv6: true,
      IPv6Network: "fc00::/48",
      IPv6SubnetMax: "fc00:0:0:5::1",
    }),
    `IPv6SubnetMax is not on a SubnetLen boundary: fc00:0:0:5::1 (${span6})`,
  );
  assert.is(
    (await ok({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fc00::/48", IPv6SubnetMin: null }))
      .ipv6SubnetMin,
    "fc00:0:0:1::",
    "null pointer = unset",
  );
});

test("at least one family", async () => {
  assert.is(
    await err({ EnableIPv4: false }),
    "EnableIPv4 and EnableIPv6 are both false: at least one must be true",
  );
});

test("Backend: vxlan when absent (flannel's documented default), Type one of vxlan, host-gw", async () => {
  assert.equal((await ok({ Network: "10.0.0.0/16" })).backend, VXLAN);
  assert.equal((await ok({ Network: "10.0.0.0/16", Backend: null })).backend, VXLAN);
  assert.is((await ok({ Network: "10.0.0.0/16", Backend: { Type: "host-gw" } })).backend.type, "host-gw");
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "udp" } }),
    'Backend.Type: unsupported value "udp"; allowed values: "vxlan", "host-gw"',
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: {} }),
    'Backend.Type is missing; allowed values: "vxlan", "host-gw"',
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: "vxlan" }),
    "error decoding Backend property of config: json: cannot unmarshal string into Go value of type struct",
  );
});

test("vxlan options: VNI, Port, MTU, DirectRouting (keys in any case), with their ranges", async () => {
  assert.equal(
    (
      await ok({
        Network: "10.0.0.0/16",
        Backend: { Type: "vxlan", VNI: 4, Port: 4789, DirectRouting: true, MTU: 1400 },
      })
    ).backend,
    { type: "vxlan", vni: 4, port: 4789, directRouting: true, mtu: 1400 },
  );
  assert.equal(
    (await ok({ Network: "10.0.0.0/16", Backend: { type: "vxlan", vni: 7, directrouting: true } })).backend,
    { type: "vxlan", vni: 7, port: 0, directRouting: true, mtu: 0 },
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", VNI: 16777216 } }),
    "Backend.VNI: unsupported value 16777216; allowed values: 0..16777215",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", Port: 70000 } }),
    "Backend.Port: unsupported value 70000; allowed values: 0..65535",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", MTU: -1 } }),
    "Backend.MTU: unsupported value -1; allowed values: 0..65535",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", VNI: "1" } }),
    "error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field VXLANConfig.vni of type int",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", GBP: true } }),
    "Backend.GBP: unsupported value true; allowed values: false (weft's vxlan device has no group-based policy)",
  );
  assert.match(
    await err({ Network: "10.0.0.0/16", Backend: { Type: "vxlan", Learning: true } }),
    /^Backend.Learning: unsupported value true; allowed values: false/,
  );
  // host-gw reads no options, as flannel's: vxlan keys there are not checked.
  assert.is(
    (await ok({ Network: "10.0.0.0/16", Backend: { Type: "host-gw", VNI: "x" } })).backend.type,
    "host-gw",
  );
});

test("EnableNFTables is refused: weftd's rules are flannel's iptables chains", async () => {
  assert.is(
    await err({ Network: "10.0.0.0/16", EnableNFTables: true }),
    "EnableNFTables: unsupported value true; allowed values: false (weftd programs flannel's iptables chains only)",
  );
  assert.is((await ok({ Network: "10.0.0.0/16", EnableNFTables: false })).network, "10.0.0.0/16");
});

test("Go's decoding: keys in any case, the last duplicate wins, wrong types and syntax in Go's words", async () => {
  assert.is((await ok('{"network":"10.1.0.0/16","NETWORK":"10.2.0.0/16"}')).network, "10.2.0.0/16");
  assert.is((await ok({ Network: "10.0.0.0/16", subnetlen: 26 })).subnetLen, 26);
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetLen: "24" }),
    "json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetLen: -1 }),
    "json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", SubnetLen: 24.5 }),
    "json: cannot unmarshal number 24.5 into Go struct field Config.SubnetLen of type uint",
  );
  assert.is(
    await err({ Network: "10.0.0.0/16", EnableIPv6: "yes" }),
    "json: cannot unmarshal string into Go struct field Config.EnableIPv6 of type bool",
  );
  assert.is(await err("[]"), "json: cannot unmarshal array into Go value of type subnet.Config");
  assert.is(await err('{"Network":"10.0.0.0/16",'), "unexpected end of JSON input");
  assert.is(await err('{"Network":"10.0.0.0/16"}}'), "invalid character '}' after top-level value");
  // Unknown keys are ignored, as Go does.
  assert.is((await ok({ Network: "10.0.0.0/16", Whatever: 1 })).network, "10.0.0.0/16");
});

test("the document is kept as read, for logs", async () => {
  const text = '{ "Network": "10.244.0.0/16" }\n';
  assert.is((await parseNetConf(text)).raw, text);
});

test.run();
