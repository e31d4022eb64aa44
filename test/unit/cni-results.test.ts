import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { convertResult, formatResult, parsePrevResult, parseResult } from "../../shared/cni/results.js";
import type { NetConf, Result } from "../../shared/cni/types.js";
import { cniErrorOf } from "../helpers/cni-error.js";

// Fixtures are JSON next to the sources; tests run from the repository root (npm scripts, .ci/run).
const FIXTURES = resolve(process.cwd(), "test/fixtures/results");
const ALL = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const V04X = ["0.3.0", "0.3.1", "0.4.0"];
const V1X = ["1.0.0", "1.1.0"];

type Doc = Record<string, unknown>;

function fixture(name: string): Doc {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as Doc;
}

function relabel(doc: Doc, version: string): Doc {
  return { ...structuredClone(doc), cniVersion: version };
}

/** A result rendered the way skel prints it (Go's MarshalIndent with four spaces). */
function printed(doc: unknown): string {
  return JSON.stringify(doc, null, 4);
}

const golden = suite("every version pair, against the reference Go library's output");

interface Conversion {
  from: string;
  to: string;
  output?: string;
  error?: string;
}

const goldenFiles = readdirSync(join(FIXTURES, "golden")).filter((f) => f.endsWith(".json"));

golden("there is a golden file per fixture and every pair is covered", () => {
  const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith(".json"));
  assert.equal(goldenFiles.sort(), fixtures.sort());
  const pairs = new Set<string>();
  for (const f of goldenFiles) {
    const conversions = JSON.parse(readFileSync(join(FIXTURES, "golden", f), "utf8")) as Conversion[];
    for (const c of conversions) pairs.add(`${c.from}>${c.to}`);
  }
  assert.is(pairs.size, ALL.length * ALL.length);
});

for (const file of goldenFiles) {
  const name = file.replace(/\.json$/, "");
  golden(`${name}: byte-identical output or the same error`, () => {
    const source = fixture(name);
    const conversions = JSON.parse(readFileSync(join(FIXTURES, "golden", file), "utf8")) as Conversion[];
    for (const c of conversions) {
      const doc = relabel(source, c.from);
      const what = `${name} ${c.from} -> ${c.to}`;
      if (c.error !== undefined) {
        const e = cniErrorOf(() => convertResult(doc, c.to));
        assert.is(e.msg, c.error, what);
        assert.is(e.code, 999, what);
      } else {
        assert.fixture(printed(convertResult(doc, c.to)), c.output!, what);
      }
    }
  });
}

golden.run();

const rules = suite("conversion rules");

const dual = fixture("bridge-dualstack-1.0.0");
const flannel = fixture("bridge-flannel-0.3.1");
const ip020 = fixture("host-local-0.2.0");
const ipam = fixture("host-local-dns-1.0.0");
const full = fixture("full-1.1.0");

rules("1.0.0 and 1.1.0 results carry no ips[].version", () => {
  for (const v of V1X) {
    for (const src of [dual, flannel, ip020, full]) {
      const out = convertResult(src, v) as Result;
      assert.ok(out.ips && out.ips.length > 0);
      for (const ip of out.ips!) assert.not.ok("version" in ip, `${v}: ${JSON.stringify(ip)}`);
    }
  }
});

rules('0.3.x/0.4.0 carry version "4"/"6" and always "dns":{}', () => {
  for (const v of V04X) {
    const out = convertResult(dual, v) as Result;
    assert.equal(
      out.ips!.map((ip) => ip.version),
      ["4", "6"],
    );
    assert.equal(out.dns, {});
  }
});

rules("1.x omits an empty dns, keeps a set one", () => {
  for (const v of V1X) {
    assert.not.ok("dns" in (convertResult(flannel, v) as unknown as Doc));
    assert.equal((convertResult(ipam, v) as Result).dns, {
      nameservers: ["10.213.0.10"],
      search: ["default.svc.cluster.local", "svc.cluster.local"],
      options: ["ndots:5"],
    });
  }
});

rules("to 0.2.0: the first v4/v6 IP become ip4/ip6, routes split by family, interfaces dropped", () => {
  const out = convertResult(full, "0.2.0");
  assert.equal(out, {
    cniVersion: "0.2.0",
    ip4: {
      ip: "10.213.7.2/24",
      gateway: "10.213.7.1",
      routes: [{ dst: "10.213.0.0/16" }, { dst: "0.0.0.0/0", gw: "10.213.7.1" }],
    },
    ip6: {
      ip: "fd00:10:213:7::2/64",
      gateway: "fd00:10:213:7::1",
      routes: [{ dst: "::/0", gw: "fd00:10:213:7::1" }, { dst: "fd00:10:213::/56" }],
    },
    dns: {
      nameservers: ["10.213.0.10"],
      domain: "cluster.local",
      search: ["default.svc.cluster.local"],
      options: ["ndots:5"],
    },
  });
});

rules("to 0.2.0: a route whose family has no IP is dropped; dns is always there", () => {
  assert.equal(convertResult(fixture("ipam-only-v6-0.4.0"), "0.1.0"), {
    cniVersion: "0.1.0",
    ip6: { ip: "fd00:10:213:8::5/64", gateway: "fd00:10:213:8::1", routes: [{ dst: "::/0" }] },
    dns: {},
  });
});

rules("to 0.2.0 without any IP fails", () => {
  const e = cniErrorOf(() => convertResult(fixture("no-ips-1.0.0"), "0.2.0"));
  assert.is(e.msg, "cannot convert: no valid IP addresses");
});

rules("from 0.2.0: ips with versions, routes concatenated v4 then v6", () => {
  assert.equal(convertResult(ip020, "0.4.0"), {
    cniVersion: "0.4.0",
    ips: [
      { version: "4", address: "10.213.8.2/24", gateway: "10.213.8.1" },
      { version: "6", address: "fd00:10:213:8::2/64", gateway: "fd00:10:213:8::1" },
    ],
    routes: [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16", gw: "10.213.8.254" }, { dst: "::/0" }],
    dns: {},
  });
});

rules("1.1.0 interface fields are dropped going to 0.4.0; route fields are kept", () => {
  const out = convertResult(full, "0.4.0") as Result;
  assert.equal(out.interfaces, [
    { name: "cni0", mac: "4a:12:07:e2:96:70" },
    { name: "vhost-user0" },
    { name: "eth0", mac: "12:ba:2e:86:7a:b2", sandbox: "/var/run/netns/pod1" },
  ]);
  assert.equal(out.routes![0], {
    dst: "10.213.0.0/16",
    mtu: 1400,
    advmss: 1360,
    priority: 100,
    table: 0,
    scope: 0,
  });
  // 1.0.0 <-> 1.1.0 only relabels.
  const v100 = convertResult(full, "1.0.0") as Result;
  assert.equal(v100.interfaces![1], {
    mtu: 9000,
    name: "vhost-user0",
    pciID: "0000:03:00.1",
    socketPath: "/var/run/vhost-user/sock0",
  });
});

rules("a zero route table or scope is a value (Go *int), a zero mtu/advmss/priority is not", () => {
  const out = convertResult(
    {
      cniVersion: "1.1.0",
      ips: [{ address: "10.0.0.2/24" }],
      routes: [{ dst: "0.0.0.0/0", table: 0, scope: 0, mtu: 0, advmss: 0, priority: 0 }],
    },
    "1.1.0",
  ) as Result;
  assert.equal(out.routes, [{ dst: "0.0.0.0/0", scope: 0, table: 0 }]);
});

rules("round trips keep everything the middle version can express", () => {
  for (const src of [dual, ipam]) {
    const there = convertResult(src, "0.3.1");
    const back = convertResult(there, "1.0.0");
    assert.equal(back, convertResult(src, "1.0.0"));
  }
  // 1.1.0 -> 1.0.0 -> 1.1.0 loses nothing.
  assert.equal(convertResult(convertResult(full, "1.0.0"), "1.1.0"), convertResult(full, "1.1.0"));
  // 0.2.0 -> 1.0.0 -> 0.2.0 loses nothing either.
  assert.equal(convertResult(convertResult(ip020, "1.0.0"), "0.2.0"), ip020);
});

rules("key order: 0.4.0 family in struct order; 1.x as HEAD's cni marshals it (sorted)", () => {
  const v031 = convertResult(dual, "0.3.1") as unknown as Doc;
  assert.equal(Object.keys(v031), ["cniVersion", "interfaces", "ips", "routes", "dns"]);
  assert.equal(Object.keys((v031.ips as Doc[])[0]!), ["version", "interface", "address", "gateway"]);
  assert.equal(Object.keys((v031.interfaces as Doc[])[2]!), ["name", "mac", "sandbox"]);
  const v020 = convertResult(dual, "0.2.0") as unknown as Doc;
  assert.equal(Object.keys(v020), ["cniVersion", "ip4", "ip6", "dns"]);
  assert.equal(Object.keys(v020.ip4 as Doc), ["ip", "gateway", "routes"]);
  // cni >= v1.2.0 marshals 1.x results through a map to drop an empty dns, which sorts every level.
  const v110 = convertResult(full, "1.1.0") as unknown as Doc;
  assert.equal(Object.keys(v110), ["cniVersion", "dns", "interfaces", "ips", "routes"]);
  assert.equal(Object.keys((v110.ips as Doc[])[0]!), ["address", "gateway", "interface"]);
});

rules("an empty target version means 0.1.0", () => {
  assert.is((convertResult(dual, "") as unknown as Doc).cniVersion, "0.1.0");
  assert.is((formatResult(parseResult(dual, "1.0.0"), "") as unknown as Doc).cniVersion, "0.1.0");
});

rules("unknown versions are refused both ways", () => {
  assert.is(
    cniErrorOf(() => parseResult(relabel(dual, "9.9.9"), "1.0.0")).msg,
    'unsupported CNI result version "9.9.9"',
  );
  assert.is(
    cniErrorOf(() => convertResult(dual, "0.5.0")).msg,
    "no converter for CNI result version 1.0.0 to 0.5.0",
  );
});

rules("a result that is not an object", () => {
  for (const raw of [null, 5, "x", [1]]) cniErrorOf(() => parseResult(raw, "1.0.0"));
});

rules.run();

const parse = suite("parseResult and prevResult");

parse("a result without cniVersion is read as the assumed version", () => {
  const { cniVersion: _, ...noVersion } = flannel;
  const r = parseResult(noVersion, "0.3.1");
  assert.is(r.cniVersion, "0.3.1");
  assert.is(r.ips![0]!.address, "10.213.7.2/24");
  // Read as 1.0.0 instead, the same document is still understood (ips[].version is ignored).
  assert.not.ok("version" in parseResult(noVersion, "1.0.0").ips![0]!);
});

parse("an empty cniVersion means 0.1.0", () => {
  const r = parseResult({ ip4: { ip: "10.1.0.5/16" } }, "");
  assert.is(r.cniVersion, "0.1.0");
  assert.equal(r.ips, [{ address: "10.1.0.5/16" }]);
});

parse("the internal layout has no ips[].version and no empty dns", () => {
  const r = parseResult(flannel, "0.3.1");
  assert.equal(r.ips, [{ interface: 2, address: "10.213.7.2/24", gateway: "10.213.7.1" }]);
  assert.not.ok("dns" in r);
});

function conf(cniVersion: string, prevResult?: Doc): NetConf {
  const c: NetConf = { cniVersion, name: "cbr0", type: "portmap" };
  if (prevResult) c.prevResult = prevResult;
  return c;
}

parse("parsePrevResult: none, with version, and without version (assumed the config's)", () => {
  assert.is(parsePrevResult(conf("1.0.0")), undefined);
  assert.is(parsePrevResult(conf("1.0.0", dual))?.ips?.length, 2);
  const { cniVersion: _, ...noVersion } = dual;
  const r = parsePrevResult(conf("1.1.0", noVersion));
  assert.is(r?.cniVersion, "1.1.0");
  assert.equal(r?.routes?.[3], { dst: "::/0", gw: "fd00:10:213:7::1" });
  // A 0.2.0 config's prevResult without a version is a 0.2.0 result.
  const { cniVersion: __, ...old } = ip020;
  assert.is(parsePrevResult(conf("0.2.0", old))?.ips?.length, 2);
});

parse("parsePrevResult: an unusable prevResult is a clear error", () => {
  const e = cniErrorOf(() => parsePrevResult(conf("1.0.0", relabel(dual, "7.0.0"))));
  assert.is(e.msg, 'could not parse prevResult: unsupported CNI result version "7.0.0"');
});

parse("keys match case-insensitively, as the Go result types decode them", () => {
  const r = parseResult(
    {
      CNIVersion: "1.0.0",
      Interfaces: [{ Name: "eth0", Sandbox: "/proc/1/ns/net" }],
      IPs: [{ Interface: 0, Address: "10.1.0.5/24", Gateway: "10.1.0.1" }],
      Routes: [{ Dst: "0.0.0.0/0", GW: "10.1.0.1" }],
    },
    "0.3.1",
  );
  assert.equal(r, {
    cniVersion: "1.0.0",
    interfaces: [{ name: "eth0", sandbox: "/proc/1/ns/net" }],
    ips: [{ interface: 0, address: "10.1.0.5/24", gateway: "10.1.0.1" }],
    routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }],
  });
});

parse("malformed entries are a decode error naming the field, never a JavaScript error", () => {
  const bad: Array<[Doc, string]> = [
    [{ cniVersion: "1.0.0", interfaces: [null] }, "could not parse prevResult: interfaces[0] is null"],
    [
      { cniVersion: "1.0.0", ips: [{ address: "10.1.0.5/24" }, null] },
      "could not parse prevResult: ips[1] is null",
    ],
    [
      { cniVersion: "1.0.0", ips: [{ address: 5 }] },
      "could not parse prevResult: json: cannot unmarshal number into Go struct field IPConfig.ips.address of type types.IPNet",
    ],
    [
      { cniVersion: "1.0.0", ips: [{ address: "garbage" }] },
      "could not parse prevResult: ips[0].address: invalid CIDR address: garbage",
    ],
    [{ cniVersion: "1.0.0", ips: [{}] }, "could not parse prevResult: ips[0].address is missing"],
    [
      { cniVersion: "1.0.0", ips: [{ address: "10.1.0.5/24", gateway: "01.2.3.4" }] },
      "could not parse prevResult: ips[0].gateway: invalid IP address: 01.2.3.4",
    ],
    [
      { cniVersion: "1.0.0", routes: [{ dst: "x" }] },
      "could not parse prevResult: routes[0].dst: invalid CIDR address: x",
    ],
    [
      { cniVersion: "1.0.0", interfaces: "eth0" },
      "could not parse prevResult: json: cannot unmarshal string into Go struct field Result.interfaces of type []Interface",
    ],
    [{ cniVersion: "0.2.0", ip4: { ip: null } }, "could not parse prevResult: ip4.ip is missing"],
    [
      { cniVersion: 1 },
      "could not parse prevResult: json: cannot unmarshal number into Go struct field Result.cniVersion of type string",
    ],
  ];
  for (const [doc, msg] of bad) {
    const e = cniErrorOf(() => parsePrevResult(conf("1.0.0", doc)));
    assert.is(e.msg, msg);
  }
});

parse.run();
