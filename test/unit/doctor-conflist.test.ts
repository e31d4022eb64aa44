import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type CniSetup, confFiles, parseConf } from "../../cli/doctor/conflist.js";
import { repoRoot } from "../helpers/cnitool.js";

const setup = (file: string, doc: unknown) => parseConf(file, JSON.stringify(doc)) as CniSetup;
const error = (file: string, text: string) => (parseConf(file, text) as { error?: string }).error;

test("libcni's order: .conf, .conflist and .json files by name in byte order", () => {
  assert.equal(
    confFiles(["99-z.conflist", "10-flannel.conflist", "README", "05-a.json", "10-Z.conf", "x.conf.bak"]),
    ["05-a.json", "10-Z.conf", "10-flannel.conflist", "99-z.conflist"],
  );
});

test("the kube-flannel list: the plugins' defaults for every state path", () => {
  const file = join(repoRoot(), "conflists/10-flannel.conflist");
  const s = parseConf(file, readFileSync(file, "utf8")) as CniSetup;
  assert.is(s.name, "cbr0");
  assert.is(s.cniVersion, "0.3.1");
  assert.is(s.subnetFile, "/run/flannel/subnet.env");
  assert.is(s.flannelDataDir, "/var/lib/cni/flannel");
  assert.is(s.ipamDataDir, "/var/lib/cni/networks");
  assert.is(s.delegateType, "bridge");
  assert.is(s.bridge, "cni0");
  assert.is(s.ipamType, "host-local");
  assert.equal(s.executables, ["flannel", "portmap", "bridge", "host-local"]);
});

test("private state paths come from the list (a simulated node)", () => {
  const s = setup("/n/net.d/10-x.conflist", {
    name: "wnet1",
    cniVersion: "1.0.0",
    plugins: [
      {
        type: "flannel",
        subnetFile: "/n/subnet.env",
        dataDir: "/n/flannel",
        ipam: { dataDir: "/n/ipam" },
        delegate: { bridge: "wbr1", hairpinMode: true },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "tuning" },
    ],
  });
  assert.equal(
    [s.subnetFile, s.flannelDataDir, s.ipamDataDir, s.bridge, s.name],
    ["/n/subnet.env", "/n/flannel", "/n/ipam", "wbr1", "wnet1"],
  );
  assert.equal(s.executables, ["flannel", "portmap", "tuning", "bridge", "host-local"]);
});

test("a single plugin config (.conf) is a list of that one plugin", () => {
  const s = setup("/d/10-flannel.conf", { name: "cbr0", cniVersion: "0.3.1", type: "flannel" });
  assert.equal(
    s.plugins.map((p) => p.type),
    ["flannel"],
  );
  assert.ok(s.flannel);
});

test("what the runtime cannot use, with the reason", () => {
  assert.match(error("/d/a.conflist", '{"name":') ?? "", /^\/d\/a\.conflist is not valid JSON: /);
  assert.is(error("/d/a.conflist", "[]"), "/d/a.conflist does not hold a JSON object");
  assert.match(
    error("/d/a.conflist", '{"name":"x","cniVersion":"0.3.1","plugins":[]}') ?? "",
    /no "plugins"/,
  );
  assert.match(error("/d/a.conflist", '{"cniVersion":"0.3.1","plugins":[{"type":"a"}]}') ?? "", /no "name"/);
  assert.match(error("/d/a.conflist", '{"name":"x","plugins":[{"type":"a"}]}') ?? "", /no "cniVersion"/);
  assert.match(
    error("/d/a.conflist", '{"name":"x","cniVersion":"2.0.0","plugins":[{"type":"a"}]}') ?? "",
    /cniVersion "2\.0\.0", which no plugin here speaks/,
  );
  assert.is(
    error("/d/a.conflist", '{"name":"x","cniVersion":"1.0.0","plugins":[{"type":"a"},{}]}'),
    '/d/a.conflist: plugins[1] has no "type"',
  );
});

test.run();
