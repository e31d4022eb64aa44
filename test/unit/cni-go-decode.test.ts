import { test } from "uvu";
import * as assert from "uvu/assert";
import { portMapSchema } from "../../plugins/portmap/config.js";
import { fieldOf, foldName, goDecode } from "../../shared/cni/go-decode.js";
import { scanJson } from "../../shared/cni/json-scan.js";
import type { JsonSchema } from "../../shared/cni/schemas.js";
import { decodeConfig } from "../../shared/cni/skel.js";

/**
 * A struct like the reference plugins' configs. Every expectation below was checked against Go 1.19's
 * encoding/json decoding the same text into the equivalent Go struct.
 */
const conf: JsonSchema = {
  type: "object",
  properties: {
    name: { type: "string" },
    mtu: { type: "integer" },
    snat: { type: ["boolean", "null"] },
    markMasqBit: { type: ["integer", "null"] },
    skip: { type: "string" },
    kind: { type: "string" },
    runtimeConfig: {
      type: "object",
      properties: {
        portMappings: {
          type: "array",
          items: {
            type: "object",
            title: "main.Entry",
            properties: {
              hostPort: { type: "integer" },
              containerPort: { type: "integer" },
              protocol: { type: "string" },
              hostIP: { type: "string" },
            },
          },
        },
        mac: { type: "string" },
      },
    },
    m: { type: "object" },
    l: { type: "array", items: { type: "string" } },
  },
};

const decode = (text: string) => goDecode(scanJson(text), conf, "Conf") as Record<string, unknown>;

test("a member goes to the exactly named field, else to a case-insensitive match; the last one wins", () => {
  assert.is(decode('{"name":"a","Name":"b"}').name, "b");
  assert.is(decode('{"Name":"b","name":"a"}').name, "a");
  assert.is(decode('{"NAME":"x"}').name, "x");
  assert.equal(Object.keys(decode('{"NAME":"x"}')), ["name"]);
});

test("Go's folding: long s and the Kelvin sign match s and k; no other non-ASCII letter matches", () => {
  assert.is(decode('{"ſkip":"s"}').skip, "s");
  assert.is(decode('{"\\u212aind":"k"}').kind, "k");
  assert.is(decode('{"kınd":"k"}').kind, undefined);
  assert.is(decode('{"naſe":"x"}').name, undefined);
  assert.is(foldName("hostPort"), foldName("HOSTPORT"));
  assert.is(fieldOf(conf, "claß"), undefined);
});

test("null: a plain value keeps what it had, a pointer becomes nil, a map or slice is dropped", () => {
  assert.is(decode('{"mtu":5,"MTU":null}').mtu, 5);
  assert.is(decode('{"snat":true,"SNAT":null}').snat, null);
  assert.is(decode('{"markMasqBit":5,"MarkMasqBit":null}').markMasqBit, null);
  assert.not.ok("m" in decode('{"m":{"A":1},"m":null}'));
  assert.not.ok("l" in decode('{"l":["a"],"l":null}'));
  assert.equal(decode('{"l":["a",null]}').l, ["a", ""]);
  assert.equal(decode('{"runtimeConfig":{"portMappings":[null]}}').runtimeConfig, { portMappings: [{}] });
  assert.equal(decode('{"runtimeConfig":null}'), {});
});

test("containerd's capability args: go-cni's untagged PortMapping fills portmap's fields", () => {
  const d = decode(
    '{"runtimeConfig":{"portMappings":[{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]},"RuntimeConfig":{"mac":"m"}}',
  );
  // The second runtimeConfig is merged into the first, as Go decodes into the same struct value.
  assert.equal(d.runtimeConfig, {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" }],
    mac: "m",
  });
  assert.equal(decode('{"runtimeConfig":{"mac":"m"},"runtimeConfig":{"portMappings":[]}}').runtimeConfig, {
    mac: "m",
    portMappings: [],
  });
});

test("maps keep their keys exactly and merge a repeated map", () => {
  assert.equal(decode('{"m":{"A":1},"M":{"a":2}}').m, { A: 1, a: 2 });
  assert.equal(decode('{"unknown":{"X":1}}').unknown, { X: 1 });
});

test("wrong types and numbers an int cannot hold fail with Go's text", () => {
  const cases: Array<[string, string]> = [
    ['{"mtu":1e3}', "json: cannot unmarshal number 1e3 into Go struct field Conf.mtu of type int"],
    ['{"mtu":1.0}', "json: cannot unmarshal number 1.0 into Go struct field Conf.mtu of type int"],
    [
      '{"mtu":99999999999999999999}',
      "json: cannot unmarshal number 99999999999999999999 into Go struct field Conf.mtu of type int",
    ],
    ['{"mtu":"5"}', "json: cannot unmarshal string into Go struct field Conf.mtu of type int"],
    [
      '{"runtimeConfig":{"portMappings":[{"hostPort":"x"}]}}',
      "json: cannot unmarshal string into Go struct field Entry.runtimeConfig.portMappings.hostPort of type int",
    ],
    [
      '{"runtimeConfig":{"portMappings":{}}}',
      "json: cannot unmarshal object into Go struct field .runtimeConfig.portMappings of type []main.Entry",
    ],
  ];
  for (const [text, want] of cases) {
    assert.throws(
      () => decode(text),
      (err: Error) => err.message === want,
      `${text}: ${want}`,
    );
  }
});

test("portmap's own schema takes containerd's mixed-case duplicates as Go does", () => {
  const d = goDecode(
    scanJson(
      '{"runtimeConfig":{"portMappings":[{"hostPort":1,"HostPort":8080,"containerPort":80,"PROTOCOL":"udp"}]},"SNAT":false,"markmasqbit":14}',
    ),
    portMapSchema,
    "PortMapConf",
  ) as Record<string, unknown>;
  assert.equal(d.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "udp" }] });
  assert.is(d.snat, false);
  assert.is(d.markMasqBit, 14);
});

test("through skel: flannel's maps keep exact keys, its own fields fold; host-local reads go-cni's ipRanges", async () => {
  const flannel = (await import("../../plugins/flannel/main.js")).plugin;
  const f = await decodeConfig(
    Buffer.from(
      '{"cniVersion":"0.3.1","Name":"cbr0","Type":"flannel","SubnetFile":"/x/subnet.env","Delegate":{"HairpinMode":true,"isDefaultGateway":true},"IPAM":{"Routes":[]}}',
    ),
    flannel,
  );
  assert.is(f.name, "cbr0");
  assert.is(f.subnetFile, "/x/subnet.env");
  assert.equal(f.delegate, { HairpinMode: true, isDefaultGateway: true });
  assert.equal(f.ipam, { Routes: [] });

  const hostLocal = (await import("../../plugins/host-local/main.js")).plugin;
  const h = await decodeConfig(
    Buffer.from(
      '{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"},"runtimeConfig":{"IPRanges":[[{"Subnet":"10.9.0.0/24","RangeStart":"10.9.0.10","RangeEnd":"10.9.0.20","Gateway":"10.9.0.1"}]]}}',
    ),
    hostLocal,
  );
  assert.equal(h.runtimeConfig, {
    ipRanges: [
      [{ subnet: "10.9.0.0/24", rangeStart: "10.9.0.10", rangeEnd: "10.9.0.20", gateway: "10.9.0.1" }],
    ],
  });
});

test.run();
