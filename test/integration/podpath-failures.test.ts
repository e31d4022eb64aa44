/**
 * Failure injection on the flannel list through libcni: each failed ADD returns the plugin's CNI error
 * object and leaves nothing behind (no saved delegate config, no pod veth, no address reservation); the
 * pod can then be added once the fault is gone.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot } from "../helpers/netns.js";
import {
  delegateSets,
  type Pod,
  type PodCallOptions,
  PodPath,
  type PodPathOptions,
} from "../helpers/podpath.js";

function podLinks(pod: Pod): string[] {
  return pod.netns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname);
}

/** The error object libcni passed through, as cnitool prints it. */
function assertCniError(r: { status: number | null; json?: Record<string, unknown> }, msg: RegExp): void {
  assert.is(r.status, 1);
  assert.type(r.json?.code, "number", "an error object on stdout");
  assert.match(String(r.json?.msg), msg);
}

function assertNothingLeft(pp: PodPath, pod: Pod, ports: string[] = []): void {
  assert.equal(pp.savedConfigs(), [], "no saved delegate config");
  assert.equal(pp.reservations(), [], "no reservation");
  assert.equal(pp.bridgePorts(), ports, "no veth on the bridge");
  assert.equal(podLinks(pod), ["lo"], "nothing in the pod");
}

const sets = await delegateSets();

for (const set of sets) {
  const s = suite(`flannel list [${set} delegates] failure injection`);
  const made: PodPath[] = [];
  const extraLinks: string[] = [];
  const create = async (o: PodPathOptions = {}) => {
    const pp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, ...o });
    made.push(pp);
    return pp;
  };
  s.before(() => assertRoot());
  s.after(() => {
    for (const l of extraLinks) {
      try {
        execFileSync("ip", ["link", "del", l], { stdio: "ignore" });
      } catch {
        // gone with its peer
      }
    }
    for (const pp of made) pp.cleanup();
  });

  s("IPAM plugin missing", async () => {
    const pp = await create({ omitPlugins: ["host-local"] });
    const pod = pp.pod();
    assertCniError(pp.add(pod), /failed to find plugin "host-local" in path/);
    assertNothingLeft(pp, pod);
  });

  s("netns path wrong", async () => {
    const pp = await create();
    const pod = pp.pod();
    assertCniError(pp.add(pod, { netnsPath: `/var/run/netns/${uniqueName("nope")}` }), /netns|no such file/i);
    assertNothingLeft(pp, pod);
    assert.ok(pp.addOk(pod), "the same pod adds fine with the right netns");
  });

  s("bridge name invalid", async () => {
    const pp = await create({
      edit: (l) => {
        (l.plugins[0]!.delegate as Record<string, unknown>).bridge = "this-name-is-way-too-long";
      },
    });
    const pod = pp.pod();
    assertCniError(pp.add(pod), /this-name-is-way-too-long/);
    assert.equal(pp.savedConfigs(), []);
    assert.equal(pp.reservations(), []);
    assert.equal(podLinks(pod), ["lo"]);
  });

  s("address conflict: the bridge has another address and a port in use", async () => {
    const pp = await create();
    const pod = pp.pod();
    const stale = pp.net.gateway!.replace(/\.\d+\.1$/, ".0.1");
    const port = uniqueName("wpo");
    const peer = uniqueName("wpp");
    extraLinks.push(port);
    execFileSync("ip", ["link", "add", pp.bridge, "type", "bridge"]);
    execFileSync("ip", ["addr", "add", `${stale}/24`, "dev", pp.bridge]);
    execFileSync("ip", ["link", "add", port, "type", "veth", "peer", "name", peer]);
    execFileSync("ip", ["link", "set", port, "master", pp.bridge]);
    assertCniError(pp.add(pod), /already has an IP address different from/);
    assertNothingLeft(pp, pod, [port]);
  });

  // A DEL that fails on every retry leaves the pod Terminating forever (flannel-io/flannel#1662): after an
  // ADD the delegate refused, the runtime's DEL must succeed and nothing may be left.
  const refusedAdd = (name: string, o: PodPathOptions, call: PodCallOptions, msg: RegExp) =>
    s(`delegate refuses the config (${name}): ADD fails, nothing saved; DEL succeeds`, async () => {
      const pp = await create(o);
      const pod = pp.pod();
      assertCniError(pp.add(pod, call), msg);
      assertNothingLeft(pp, pod);
      for (let i = 0; i < 2; i++) {
        const del = pp.del(pod, call);
        assert.is(del.status, 0, `DEL ${i + 1}: ${del.stdout}${del.stderr}`);
        assertNothingLeft(pp, pod);
      }
      // Fixed config, same pod: it adds, and DELs away completely.
      if (o.edit) {
        (pp.flannelConf.delegate as Record<string, unknown>).hairpinMode = true;
        pp.writeList();
      }
      assert.ok(pp.addOk(pod));
      assert.is(pp.del(pod).status, 0);
      assertNothingLeft(pp, pod);
    });
  refusedAdd(
    'delegate hairpinMode "yes"',
    {
      edit: (l) => {
        (l.plugins[0]!.delegate as Record<string, unknown>).hairpinMode = "yes";
      },
    },
    {},
    /hairpinMode/,
  );
  refusedAdd("CNI_ARGS IgnoreUnknown=maybe", {}, { args: "IgnoreUnknown=maybe" }, /IgnoreUnknown=maybe/);

  s(
    "a saved config the delegate refuses as such (a version it does not speak): DEL tears down with a rebuilt one",
    async () => {
      const pp = await create();
      const pod = pp.pod();
      assert.ok(pp.addOk(pod));
      const file = join(pp.flannelDataDir, pod.containerId);
      const saved = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      // Saved by a newer plugin set, replayed after a rollback: the delegate answers code 1 on every retry.
      writeFileSync(file, JSON.stringify({ ...saved, cniVersion: "9.9.9" }));
      const del = pp.del(pod);
      assert.is(del.status, 0, del.stdout + del.stderr);
      // The saved config is useless; one rebuilt from the flannel config and subnet.env releases it all.
      assertNothingLeft(pp, pod);
    },
  );

  s(
    "over-long container ID: a clear error naming CNI_CONTAINERID and the limit; nothing left; DEL succeeds",
    async () => {
      const pp = await create();
      const pod = pp.pod();
      pod.containerId = "a".repeat(300);
      const r = pp.add(pod);
      assertCniError(r, /CNI_CONTAINERID is too long for .*300 bytes, at most 255/);
      assert.is(r.json?.code, 4);
      assert.not.match(r.stdout + r.stderr, /ENAMETOOLONG|lstat/);
      assertNothingLeft(pp, pod);
      const del = pp.del(pod);
      assert.is(del.status, 0, del.stdout + del.stderr);
    },
  );

  s("a container ID whose saved config fits a file name works end to end (238 bytes)", async () => {
    const pp = await create();
    const pod = pp.pod();
    pod.containerId = "b".repeat(238);
    assert.ok(pp.addOk(pod));
    assert.equal(pp.savedConfigs(), [pod.containerId]);
    const del = pp.del(pod);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assertNothingLeft(pp, pod);
  });

  s.run();
}

for (const set of sets) {
  const s = suite(`flannel [${set} delegates] STATUS through libcni (1.1.0)`);
  let pp: PodPath;
  s.before(async () => {
    assertRoot();
    pp = await PodPath.create({ cniVersion: "1.1.0", delegates: set, withoutPortmap: true });
  });
  s.after(() => pp?.cleanup());

  s("ready with subnet.env and plugins; 50 naming the reason otherwise", async () => {
    const ok = (await import("../helpers/cnitool.js")).cnitool(
      "status",
      pp.netName,
      undefined,
      pp.toolOptions(),
    );
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    execFileSync("rm", [pp.subnetEnvFile]);
    const r = (await import("../helpers/cnitool.js")).cnitool(
      "status",
      pp.netName,
      undefined,
      pp.toolOptions(),
    );
    assert.is(r.status, 1);
    assert.is(r.json?.code, 50);
    assert.match(String(r.json?.msg), "flannel subnet.env is not ready: open ");
  });

  s.run();
}

{
  // weft's own portmap: the reference fails this DEL (and every retry of it).
  const s = suite("flannel list [weft delegates] a conflist edited to wrong types after ADD");
  let pp: PodPath;
  s.before(async () => {
    assertRoot();
    pp = await PodPath.create({ cniVersion: "1.0.0", delegates: "weft" });
  });
  s.after(() => pp?.cleanup());

  s("DEL leaves the wrong keys out and still removes the pod's rules, veth and address", () => {
    const pod = pp.pod();
    const portMappings = [{ hostPort: 18431, containerPort: 80, protocol: "tcp" }];
    pp.addOk(pod, { capArgs: { portMappings } });
    const chain = dnatChainName(pp.netName, pod.containerId);
    assert.match(execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }), chain);
    const portmap = pp.list.plugins.find((p) => p.type === "portmap")!;
    Object.assign(portmap, { snat: "yes", markMasqBit: "13" });
    pp.writeList();
    const r = pp.del(pod, { capArgs: { portMappings } });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.not.match(execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }), chain);
    assertNothingLeft(pp, pod);
    // ADD with the same list still refuses it, naming the key.
    const again = pp.add(pp.pod(), { capArgs: { portMappings } });
    // libcni re-marshals the entry with sorted keys, so markMasqBit is the first wrong key portmap meets.
    assertCniError(
      again,
      /^failed to parse network configuration: json: cannot unmarshal string into Go struct field PortMapConf\.markMasqBit of type \*int$/,
    );
  });

  s.run();
}
