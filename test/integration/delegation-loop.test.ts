/**
 * Delegation loops: a delegate or IPAM `type` that names a plugin already running in the call (bridge
 * with "ipam":{"type":"bridge"}, flannel delegating to flannel, flannel -> bridge -> flannel as IPAM)
 * used to recurse until the runtime killed the call. Each case runs weft's executables the way a runtime
 * does, with the delegates in-process (CNI_PATH holds weft's own executable) and executed (CNI_PATH holds
 * wrappers, so every hop is a new process, as with a foreign plugin in between): ADD ends at once with a
 * CNI error naming the chain and leaves nothing; DEL succeeds.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type PluginRun, pluginRunOf } from "../helpers/plugin.js";
import { installWeft } from "../helpers/podpath.js";

assertRoot();

const PLUGINS = ["flannel", "bridge", "host-local"];
type Mode = "in-process" | "executed";

interface Env {
  root: string;
  bin: string;
  bridge: string;
  pod: TestNetns;
  subnetFile: string;
  dataDir: string;
  ipamDir: string;
}

/**
 * A CNI_PATH of weft's plugins: the executables themselves (in-process delegation) or wrappers that exec
 * them (each delegate a new process). `extra` adds wrapper names running one of them (a foreign hop).
 */
function makeEnv(mode: Mode, extra: Record<string, string> = {}): Env {
  const root = mkdtempSync(join(tmpdir(), "weft-loop-"));
  const bin = join(root, "bin");
  const real = join(root, "real");
  mkdirSync(bin);
  mkdirSync(real);
  for (const name of PLUGINS) {
    if (mode === "in-process") installWeft(bin, name);
    else {
      installWeft(real, name);
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${join(real, name)}" "$@"\n`, { mode: 0o755 });
    }
  }
  for (const [name, target] of Object.entries(extra)) {
    if (mode === "in-process") installWeft(real, target);
    writeFileSync(join(bin, name), `#!/bin/sh\nexec "${join(real, target)}" "$@"\n`, { mode: 0o755 });
  }
  const subnetFile = join(root, "subnet.env");
  writeFileSync(
    subnetFile,
    "FLANNEL_NETWORK=10.233.0.0/16\nFLANNEL_SUBNET=10.233.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
  return {
    root,
    bin,
    bridge: uniqueName("wlb"),
    pod: TestNetns.create("wlp"),
    subnetFile,
    dataDir: join(root, "flannel"),
    ipamDir: join(root, "ipam"),
  };
}

function cleanup(e: Env): void {
  e.pod.delete();
  try {
    execFileSync("ip", ["link", "del", e.bridge], { stdio: "ignore" });
  } catch {
    // never created
  }
  rmSync(e.root, { recursive: true, force: true });
}

/** Runs a plugin as a runtime does; one that does not end within 20 s is killed and fails the test. */
function run(e: Env, plugin: string, command: string, conf: object): PluginRun {
  const r = spawnSync(join(e.bin, plugin), [], {
    env: {
      ...(process.env as Record<string, string>),
      CNI_COMMAND: command,
      CNI_CONTAINERID: "loop1",
      CNI_NETNS: e.pod.path,
      CNI_IFNAME: "eth0",
      CNI_PATH: e.bin,
    },
    input: JSON.stringify(conf),
    encoding: "utf8",
    timeout: 20_000,
    killSignal: "SIGKILL",
  });
  assert.is(r.signal, null, `${plugin} ${command} did not end: killed after 20 s`);
  return pluginRunOf(r);
}

function assertLoop(r: PluginRun, chain: RegExp): void {
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, 7, r.stdout);
  assert.match(String(r.json?.msg), chain);
  assert.is(r.json?.details, 'a delegate or IPAM "type" names a plugin that is already running in this call');
}

function assertNothingLeft(e: Env): void {
  assert.equal(
    e.pod.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
    ["lo"],
    "nothing in the pod",
  );
  let bridge = true;
  try {
    execFileSync("ip", ["link", "show", e.bridge], { stdio: "ignore" });
  } catch {
    bridge = false;
  }
  assert.not.ok(bridge, "no bridge");
  const files = (dir: string) => {
    try {
      return readdirSync(dir, { recursive: true }).map(String);
    } catch {
      return [];
    }
  };
  assert.equal(files(e.dataDir), [], "no saved delegate config");
  assert.equal(
    files(e.ipamDir).filter((f) => /\d$/.test(f) && !f.includes("last_reserved")),
    [],
    "no reservation",
  );
}

function bridgeConf(e: Env, ipamType: string): object {
  return {
    cniVersion: "1.0.0",
    name: "loopnet",
    type: "bridge",
    bridge: e.bridge,
    isGateway: true,
    ipam: { type: ipamType, dataDir: e.ipamDir, ranges: [[{ subnet: "10.233.9.0/24" }]] },
  };
}

function flannelConf(e: Env, extra: Record<string, unknown>): object {
  return {
    cniVersion: "1.0.0",
    name: "loopnet",
    type: "flannel",
    subnetFile: e.subnetFile,
    dataDir: e.dataDir,
    ...extra,
  };
}

for (const mode of ["in-process", "executed"] as const) {
  const t = suite(`delegation loops (${mode} delegates)`);

  const loopCase = (
    name: string,
    plugin: string,
    conf: (e: Env) => object,
    chain: RegExp,
    extra: Record<string, string> = {},
  ) =>
    t(name, () => {
      const e = makeEnv(mode, extra);
      try {
        assertLoop(run(e, plugin, "ADD", conf(e)), chain);
        assertNothingLeft(e);
        for (let i = 0; i < 2; i++) {
          const del = run(e, plugin, "DEL", conf(e));
          assert.is(del.status, 0, del.stdout + del.stderr);
          assert.is(del.stdout, "");
        }
        assertNothingLeft(e);
      } finally {
        cleanup(e);
      }
    });

  loopCase(
    'bridge with "ipam":{"type":"bridge"}',
    "bridge",
    (e) => bridgeConf(e, "bridge"),
    /^delegation loop: bridge -> bridge$/,
  );
  loopCase(
    "flannel delegating to flannel",
    "flannel",
    (e) => flannelConf(e, { delegate: { type: "flannel", bridge: e.bridge } }),
    /^failed to delegate add: delegation loop: flannel -> flannel$/,
  );
  loopCase(
    "flannel -> bridge -> flannel as the IPAM plugin",
    "flannel",
    (e) => flannelConf(e, { delegate: { bridge: e.bridge }, ipam: { type: "flannel", dataDir: e.ipamDir } }),
    /^failed to delegate add: delegation loop: flannel -> bridge -> flannel$/,
  );
  loopCase(
    "bridge -> a foreign hop (a wrapper named hop) -> bridge: the chain survives the hop",
    "bridge",
    (e) => bridgeConf(e, "hop"),
    /^delegation loop: bridge -> hop -> bridge$/,
    { hop: "bridge" },
  );

  t("no false alarm: flannel -> bridge -> host-local adds and deletes", () => {
    const e = makeEnv(mode);
    try {
      const conf = flannelConf(e, { delegate: { bridge: e.bridge }, ipam: { dataDir: e.ipamDir } });
      const add = run(e, "flannel", "ADD", conf);
      assert.is(add.status, 0, add.stdout + add.stderr);
      const del = run(e, "flannel", "DEL", conf);
      assert.is(del.status, 0, del.stdout + del.stderr);
      execFileSync("ip", ["link", "del", e.bridge]);
      assertNothingLeft(e);
    } finally {
      cleanup(e);
    }
  });

  t.run();
}
