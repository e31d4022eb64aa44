import { test } from "uvu";
import * as assert from "uvu/assert";
import { type BridgeNetConf, collectVlanTrunk, loadNetConf } from "../../plugins/bridge/config.js";
import { plugin } from "../../plugins/bridge/main.js";
import { CniError } from "../../shared/cni/errors.js";
import { decodeConfig } from "../../shared/cni/skel.js";

const base = (extra: Record<string, unknown> = {}): BridgeNetConf =>
  ({ cniVersion: "1.0.0", name: "n", type: "bridge", ...extra }) as BridgeNetConf;

function fails(fn: () => unknown, msg: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, CniError);
    assert.is((err as CniError).msg, msg);
    return;
  }
  assert.unreachable(`expected: ${msg}`);
}

test("defaults as the reference", () => {
  const n = loadNetConf(base(), "");
  assert.is(n.brName, "cni0");
  assert.is(n.isGW, false);
  assert.is(n.mtu, 0);
  assert.is(n.preserveDefaultVlan, true);
  assert.is(n.isLayer3, false);
  assert.is(n.mac, undefined);
});

test("isDefaultGateway implies isGateway; an IPAM type makes it L3", () => {
  const n = loadNetConf(base({ isDefaultGateway: true, ipam: { type: "host-local" } }), "");
  assert.ok(n.isGW);
  assert.ok(n.isLayer3);
  assert.not.ok(loadNetConf(base({ ipam: {} }), "").isLayer3);
});

test("VLAN bounds and trunk validation use the reference's messages", () => {
  fails(() => loadNetConf(base({ vlan: 4095 }), ""), "invalid VLAN ID 4095 (must be between 0 and 4094)");
  fails(() => loadNetConf(base({ vlan: -1 }), ""), "invalid VLAN ID -1 (must be between 0 and 4094)");
  assert.is(loadNetConf(base({ vlan: 4094 }), "").vlan, 4094);
  assert.equal(collectVlanTrunk([{ id: 5 }, { minID: 3, maxID: 6 }, { id: 4 }]), [3, 4, 5, 6]);
  fails(() => collectVlanTrunk([{ minID: 0, maxID: 3 }]), "incorrect trunk minID parameter");
  fails(() => collectVlanTrunk([{ minID: 3, maxID: 4095 }]), "incorrect trunk maxID parameter");
  fails(() => collectVlanTrunk([{ minID: 5, maxID: 3 }]), "minID is greater than maxID in trunk parameter");
  fails(
    () => collectVlanTrunk([{ maxID: 3 }]),
    "minID and maxID should be configured simultaneously, minID is missing",
  );
  fails(
    () => collectVlanTrunk([{ minID: 3 }]),
    "minID and maxID should be configured simultaneously, maxID is missing",
  );
  fails(() => collectVlanTrunk([{ id: 0 }]), "incorrect trunk id parameter");
  fails(
    () => loadNetConf(base({ vlan: 3, vlanTrunk: [{ id: 4 }] }), ""),
    "cannot set vlan and vlanTrunk at the same time",
  );
});

test("incompatible switches", () => {
  fails(
    () => loadNetConf(base({ hairpinMode: true, promiscMode: true }), ""),
    "cannot set hairpin mode and promiscuous mode at the same time",
  );
  fails(
    () => loadNetConf(base({ disableContainerInterface: true, ipam: { type: "host-local" } }), ""),
    "cannot use IPAM when DisableContainerInterface flag is set",
  );
  fails(() => loadNetConf(base({ ipMasqBackend: "pf" }), ""), 'unknown ipmasq backend "pf"');
});

test("MAC precedence: runtimeConfig > args.cni > CNI_ARGS", () => {
  const env = "IgnoreUnknown=1;MAC=02:00:00:00:00:01;K8S_POD_NAME=x";
  assert.is(loadNetConf(base(), env).mac, "02:00:00:00:00:01");
  assert.is(loadNetConf(base({ args: { cni: { mac: "02:00:00:00:00:02" } } }), env).mac, "02:00:00:00:00:02");
  assert.is(
    loadNetConf(
      base({ args: { cni: { mac: "02:00:00:00:00:02" } }, runtimeConfig: { mac: "02-00-00-00-00-0A" } }),
      env,
    ).mac,
    "02:00:00:00:00:0a",
  );
  fails(() => loadNetConf(base(), "K8S_POD_NAME=x"), 'ARGS: unknown args ["K8S_POD_NAME=x"]');
});

/** The config as the bridge plugin receives it: decoded by skel into the plugin's schema, then loaded. */
async function load(json: string): Promise<ReturnType<typeof loadNetConf>> {
  return loadNetConf((await decodeConfig(Buffer.from(json), plugin)) as BridgeNetConf, "");
}

async function rejects(json: string, msg: string): Promise<void> {
  try {
    await load(json);
  } catch (err) {
    assert.instance(err, CniError);
    assert.is((err as CniError).msg, msg);
    return;
  }
  assert.unreachable(`expected: ${msg}`);
}

const conf = (rest: string) => `{"cniVersion":"1.0.0","name":"n","type":"bridge",${rest}}`;

test("wrong types fail as json.Unmarshal does; unknown keys are ignored", async () => {
  await rejects(
    conf('"hairpinMode":"true"'),
    "failed to load netconf: json: cannot unmarshal string into Go struct field NetConf.hairpinMode of type bool",
  );
  await rejects(
    conf('"mtu":1450.5'),
    "failed to load netconf: json: cannot unmarshal number 1450.5 into Go struct field NetConf.mtu of type int",
  );
  await rejects(
    conf('"vlanTrunk":[{"minID":"1"}]'),
    "failed to load netconf: json: cannot unmarshal string into Go struct field VlanTrunk.vlanTrunk.minID of type *int",
  );
  assert.is((await load(conf('"somethingNew":{"a":1},"mtu":1450'))).mtu, 1450);
});

test("keys match case-insensitively, as Go's decoder matches struct fields", async () => {
  const n = await load(
    conf(
      '"Bridge":"br9","HAIRPINMODE":true,"MTU":1400,"IsDefaultGateway":true,"RuntimeConfig":{"MAC":"02:00:00:00:00:09"}',
    ),
  );
  assert.is(n.brName, "br9");
  assert.is(n.hairpinMode, true);
  assert.is(n.mtu, 1400);
  assert.is(n.isGW, true);
  assert.is(n.mac, "02:00:00:00:00:09");
  // The last of several spellings wins; a null leaves a plain bool or int as it was.
  assert.is((await load(conf('"mtu":1300,"Mtu":1350'))).mtu, 1350);
  assert.is((await load(conf('"mtu":1300,"MTU":null'))).mtu, 1300);
  assert.is((await load(conf('"vlanTrunk":[null,{"ID":7}]'))).vlans.join(), "7");
});

test.run();
