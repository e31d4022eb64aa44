import { test } from "uvu";
import * as assert from "uvu/assert";
import { buildDelegateConfig, type FlannelNetConf } from "../../plugins/flannel/delegate.js";
import { goMarshal } from "../../plugins/flannel/go-json.js";
import { parseSubnetEnv } from "../../shared/flannel/subnet-env.js";
import { cniErrorOf, rootCause } from "../helpers/cni-error.js";

// The subnet.env files and inputs of flannel-io/cni-plugin's flannel_linux_test.go (section 1.4).
const V4 =
  "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
const V6 =
  "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
const DUAL =
  "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
const TWO_NETS =
  "FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";

function conf(extra: Partial<FlannelNetConf> = {}): FlannelNetConf {
  return { cniVersion: "", name: "cni-flannel", type: "flannel", ...extra } as FlannelNetConf;
}

/** The bytes flannel saves (and sends) for `c` with subnet.env `env`. */
function saved(c: FlannelNetConf, env: string): string {
  return goMarshal(buildDelegateConfig(c, parseSubnetEnv(env, "subnet.env"))).toString();
}

test("v4: ranges, routes, ipMasq inverted, isGateway, mtu; no cniVersion in, none out", () => {
  assert.is(
    saved(conf(), V4),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test("two v4 networks: one route each, in file order", () => {
  assert.is(
    saved(conf(), TWO_NETS),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"192.168.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test("v6 only", () => {
  assert.is(
    saved(conf(), V6),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"fc00::/64"}]],"routes":[{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test("dual-stack: two range sets (v4 first), routes v4 then v6", () => {
  assert.is(
    saved(conf(), DUAL),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fc00::/64"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test("user ipam: type and unknown keys kept, ranges replaced, user routes first", () => {
  const ipam = {
    type: "my-ipam",
    "unknown-param": "unknown-value",
    ranges: [[{ subnet: "172.16.0.0/24" }]],
    routes: [{ dst: "10.96.0.0/12" }, { dst: "192.168.244.0/24", gw: "10.1.17.20" }],
  };
  assert.is(
    saved(conf({ ipam }), V4),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.96.0.0/12"},{"dst":"192.168.244.0/24","gw":"10.1.17.20"},{"dst":"10.1.0.0/16"}],"type":"my-ipam","unknown-param":"unknown-value"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
  assert.equal(ipam.ranges, [[{ subnet: "172.16.0.0/24" }]], "the input config is not modified");
});

test("user ipam without a type gets host-local; a user subnet stays (host-local's footgun)", () => {
  assert.is(
    saved(conf({ ipam: { subnet: "10.1.17.0/24", dataDir: "/tmp/x" } }), V4),
    '{"ipMasq":false,"ipam":{"dataDir":"/tmp/x","ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"subnet":"10.1.17.0/24","type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test("kube-flannel defaults: the exact file the reference saves", () => {
  const env =
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
  const input = JSON.parse(
    '{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}',
  ) as FlannelNetConf;
  assert.is(
    saved(input, env),
    '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
  );
  // The DESIGN.md example (FLANNEL_SUBNET=10.244.7.1/24).
  assert.is(
    saved(input, env.replace("10.244.1.1/24", "10.244.7.1/24")),
    '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.7.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
  );
});

test("template keys win over defaults; name and cniVersion are overwritten", () => {
  const d = buildDelegateConfig(
    conf({
      cniVersion: "1.0.0",
      delegate: { ipMasq: true, mtu: 9000, isGateway: false, cniVersion: "0.2.0", bridge: "br9" },
    }),
    parseSubnetEnv(V4, "f"),
  );
  assert.equal(
    {
      ipMasq: d.ipMasq,
      mtu: d.mtu,
      isGateway: d.isGateway,
      cniVersion: d.cniVersion,
      bridge: d.bridge,
      name: d.name,
    },
    { ipMasq: true, mtu: 9000, isGateway: false, cniVersion: "1.0.0", bridge: "br9", name: "cni-flannel" },
  );
  // A key present with null still counts as set (Go's hasKey).
  assert.is(buildDelegateConfig(conf({ delegate: { mtu: null } }), parseSubnetEnv(V4, "f")).mtu, null);
});

test("FLANNEL_IPMASQ=false: the bridge masquerades", () => {
  const d = buildDelegateConfig(conf(), parseSubnetEnv(V4.replace("IPMASQ=true", "IPMASQ=false"), "f"));
  assert.is(d.ipMasq, true);
});

test("isGateway only for bridge", () => {
  const d = buildDelegateConfig(
    conf({ delegate: { type: "ipvlan", master: "eth0" } }),
    parseSubnetEnv(V4, "f"),
  );
  assert.is(d.type, "ipvlan");
  assert.not.ok("isGateway" in d);
});

test("runtimeConfig is passed through wholesale", () => {
  const rc = {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    ips: ["10.1.17.9/24"],
  };
  const bytes = saved(conf({ runtimeConfig: rc }), V4);
  assert.match(
    bytes,
    '"runtimeConfig":{"ips":["10.1.17.9/24"],"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]}',
  );
});

test("the three delegate validation errors", () => {
  const env = parseSubnetEnv(V4, "f");
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 5 }, "'delegate' dictionary, if present, must have (string) 'type' field"],
    [{ name: "x" }, "'delegate' dictionary must not have 'name' field, it'll be set by flannel"],
    [{ ipam: {} }, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel"],
  ];
  for (const [delegate, msg] of cases) {
    assert.is(cniErrorOf(() => buildDelegateConfig(conf({ delegate }), env)).msg, msg);
  }
});

test("ipam.routes: normalised like types.Route, malformed ones rejected", () => {
  const env = parseSubnetEnv(V4, "f");
  const routes = (r: unknown[]) =>
    JSON.stringify(
      (buildDelegateConfig(conf({ ipam: { routes: r } }), env).ipam as { routes: unknown }).routes,
    );
  // dst keeps host bits (types.IPNet), unknown keys dropped, struct order, zero ints omitted, table kept.
  assert.is(
    goMarshal(
      (
        buildDelegateConfig(
          conf({ ipam: { routes: [{ x: 1, table: 0, mtu: 0, advmss: 1400, dst: "10.96.0.1/12" }] } }),
          env,
        ).ipam as { routes: unknown }
      ).routes,
    ).toString(),
    '[{"dst":"10.96.0.1/12","advmss":1400,"table":0},{"dst":"10.1.0.0/16"}]',
  );
  assert.is(
    routes([{ dst: "FC00:0::/48", gw: "FC00::1" }]),
    '[{"dst":"fc00::/48","gw":"fc00::1"},{"dst":"10.1.0.0/16"}]',
  );
  for (const bad of [
    [{ dst: "10.96.0.0" }],
    [{ gw: "10.1.1.1" }],
    [{ dst: "10.96.0.0/12", gw: "x" }],
    [{ dst: "10.96.0.0/12", mtu: 1.5 }],
  ]) {
    assert.match(
      cniErrorOf(() => routes(bad)).msg,
      /^failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes/,
    );
  }
  assert.match(cniErrorOf(() => routes("nope" as unknown as unknown[])).msg, "failed to parse ipam.routes");
  // The parse error is kept as the cause, under the two layers of context.
  const e = cniErrorOf(() => routes([{ dst: "10.96.0.0" }]));
  assert.is((rootCause(e) as Error).message, "invalid CIDR address: 10.96.0.0");
});

test.run();
