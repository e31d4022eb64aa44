import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { CniError } from "../../shared/cni/errors.js";
import type { CallContext, Plugin } from "../../shared/cni/plugin.js";
import { runVerb } from "../../shared/cni/skel.js";
import type { Result } from "../../shared/cni/types.js";
import { createLogger } from "../../shared/log.js";
import { cmdArgs } from "../helpers/cmd-args.js";
import { rejection } from "../helpers/cni-error.js";

const log = createLogger("cni-skel-test", {});
const SUPPORTED = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

const RESULT: Result = {
  cniVersion: "1.1.0",
  interfaces: [{ name: "eth0", mac: "12:ba:2e:86:7a:b2", sandbox: "/var/run/netns/pod1" }],
  ips: [{ interface: 0, address: "10.213.9.2/24", gateway: "10.213.9.1" }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.213.9.1" }],
};

const call = cmdArgs;

const verbs = suite("runVerb");

verbs("VERSION: the current version and every supported one; stdin ignored", async () => {
  const out = await runVerb({ name: "p" }, call("VERSION", "not even json"), log);
  assert.equal(out, { cniVersion: "1.1.0", supportedVersions: SUPPORTED });
});

verbs("ADD: the plugin's result printed in the config's version", async () => {
  let seen: CallContext | undefined;
  const plugin: Plugin = {
    name: "inline",
    async add(ctx) {
      seen = ctx;
      return RESULT;
    },
  };
  const conf = { cniVersion: "0.3.1", name: "cbr0", type: "inline", extra: 1 };
  const out = await runVerb(plugin, call("ADD", conf), log);
  assert.equal(out, {
    cniVersion: "0.3.1",
    interfaces: [{ name: "eth0", mac: "12:ba:2e:86:7a:b2", sandbox: "/var/run/netns/pod1" }],
    ips: [{ version: "4", interface: 0, address: "10.213.9.2/24", gateway: "10.213.9.1" }],
    routes: [{ dst: "0.0.0.0/0", gw: "10.213.9.1" }],
    dns: {},
  });
  assert.equal(seen?.conf, conf);
  assert.is(seen?.args.containerId, "ctr1");
  const v020 = await runVerb(plugin, call("ADD", { ...conf, cniVersion: "0.2.0" }), log);
  assert.equal(v020, {
    cniVersion: "0.2.0",
    ip4: { ip: "10.213.9.2/24", gateway: "10.213.9.1", routes: [{ dst: "0.0.0.0/0", gw: "10.213.9.1" }] },
    dns: {},
  });
  // No cniVersion in the config: 0.1.0, as Go's Convert reads an empty target.
  const v010 = (await runVerb(plugin, call("ADD", { name: "cbr0" }), log)) as { cniVersion: string };
  assert.is(v010.cniVersion, "0.1.0");
});

verbs("ADD: a plugin error comes out as it was thrown; a plain Error is left to the caller", async () => {
  const failing: Plugin = {
    name: "failing",
    async add() {
      throw new CniError(11, "try again later", "locked");
    },
  };
  const e = await rejection(runVerb(failing, call("ADD", { cniVersion: "1.0.0", name: "n" }), log));
  assert.equal([e.code, e.msg, e.details], [11, "try again later", "locked"]);
});

verbs("a missing ADD handler is a clear error, not an empty result", async () => {
  const e = await rejection(runVerb({ name: "stub" }, call("ADD", { cniVersion: "1.0.0", name: "n" }), log));
  assert.is(e.msg, "stub does not implement ADD yet");
});

verbs("GC and STATUS without a handler succeed (skel's nil func)", async () => {
  for (const verb of ["GC", "STATUS"] as const) {
    const out = await runVerb({ name: "stub" }, call(verb, { cniVersion: "1.1.0", name: "n" }), log);
    assert.is(out, undefined);
  }
});

verbs("DEL, CHECK, GC and STATUS print nothing", async () => {
  const calls: string[] = [];
  const plugin: Plugin = {
    name: "all",
    async del() {
      calls.push("DEL");
    },
    async check() {
      calls.push("CHECK");
    },
    async gc(ctx) {
      calls.push(`GC ${JSON.stringify(ctx.conf["cni.dev/valid-attachments"])}`);
    },
    async status() {
      calls.push("STATUS");
    },
  };
  const conf = {
    cniVersion: "1.1.0",
    name: "n",
    "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }],
  };
  for (const verb of ["DEL", "CHECK", "GC", "STATUS"] as const) {
    assert.is(await runVerb(plugin, call(verb, conf), log), undefined);
  }
  assert.equal(calls, ["DEL", "CHECK", 'GC [{"containerID":"c1","ifname":"eth0"}]', "STATUS"]);
});

verbs("the plugin's schema is applied after the shared one", async () => {
  const plugin: Plugin = {
    name: "schema",
    schema: { type: "object", properties: { mode: { enum: ["a", "b"] }, mtu: { type: "integer" } } },
    async add() {
      return RESULT;
    },
  };
  const bad = await rejection(
    runVerb(plugin, call("ADD", { cniVersion: "1.0.0", name: "n", mode: "c" }), log),
  );
  assert.is(bad.code, 2);
  assert.match(bad.msg, /mode/);
  const badType = await rejection(
    runVerb(plugin, call("ADD", { cniVersion: "1.0.0", name: "n", mtu: "x" }), log),
  );
  assert.is(badType.code, 7);
});

verbs("container ID and ifname are checked for ADD, CHECK and DEL", async () => {
  const plugin: Plugin = { name: "p", add: async () => RESULT };
  const conf = { cniVersion: "1.0.0", name: "n" };
  const bad = await rejection(runVerb(plugin, call("ADD", conf, { ifname: "a:b" }), log));
  assert.equal([bad.code, bad.msg], [4, "interface name contains / or : or whitespace characters"]);
  // Before the config: skel validates the environment first.
  const first = await rejection(runVerb(plugin, call("DEL", "not json", { containerId: "a b" }), log));
  assert.equal([first.code, first.msg], [4, "invalid characters in containerID"]);
});

verbs.run();

const netns = suite("the plugin's own netns");

const ADDER: Plugin = { name: "p", add: async () => RESULT, del: async () => {} };
const CONF = { cniVersion: "1.0.0", name: "n" };

netns("CNI_NETNS equal to the plugin's netns: code 8 for ADD and DEL", async () => {
  for (const verb of ["ADD", "DEL"] as const) {
    const e = await rejection(runVerb(ADDER, call(verb, CONF, { netns: "/proc/self/ns/net" }), log));
    assert.equal([e.code, e.msg], [8, "plugin's netns and netns from CNI_NETNS should not be the same"]);
  }
  // The same namespace under another path is still the same namespace.
  const e = await rejection(runVerb(ADDER, call("ADD", CONF, { netns: `/proc/${process.pid}/ns/net` }), log));
  assert.is(e.code, 8);
});

netns("CNI_NETNS_OVERRIDE=1/true/TRUE skips the check", async () => {
  for (const o of ["1", "true", "TRUE", "True"]) {
    const out = await runVerb(
      ADDER,
      call("ADD", CONF, { netns: "/proc/self/ns/net", netnsOverride: o }),
      log,
    );
    assert.ok(out);
  }
  // Anything else does not.
  const e = await rejection(
    runVerb(ADDER, call("ADD", CONF, { netns: "/proc/self/ns/net", netnsOverride: "yes" }), log),
  );
  assert.is(e.code, 8);
});

netns("a missing or empty netns is the plugin's to judge (DEL after the pod is gone)", async () => {
  assert.is(await runVerb(ADDER, call("DEL", CONF, { netns: "" }), log), undefined);
  assert.is(
    await runVerb(ADDER, call("DEL", CONF, { netns: "/var/run/netns/gone-long-ago" }), log),
    undefined,
  );
});

netns("another netns (pid 1's, unless this test runs in it) passes", async () => {
  const other = "/proc/1/ns/net";
  let same = false;
  try {
    const { statSync } = await import("node:fs");
    const a = statSync(other);
    const b = statSync("/proc/self/ns/net");
    same = a.ino === b.ino && a.dev === b.dev;
  } catch {
    same = true; // not visible without privileges: nothing to compare with
  }
  if (!same) assert.ok(await runVerb(ADDER, call("ADD", CONF, { netns: other }), log));
});

netns.run();

/** pluginMain as a process: a tiny plugin script using the compiled skel, run like a runtime runs it. */
const main = suite("pluginMain (as a process)");

const dir = mkdtempSync(join(tmpdir(), "weft-cni-skel-"));
const script = join(dir, "plugin.mjs");
const skelUrl = new URL("../../shared/cni/skel.js", import.meta.url).href;
writeFileSync(
  script,
  `import { pluginMain } from ${JSON.stringify(skelUrl)};
await pluginMain({
  name: "tiny",
  async add(ctx) {
    if (ctx.conf.fail) throw new Error("plain failure");
    return { cniVersion: "1.1.0", ips: [{ address: "10.213.9.2/24" }] };
  },
});
`,
);

main.after(() => rmSync(dir, { recursive: true, force: true }));

function runMain(env: Record<string, string>, stdin: string) {
  const r = spawnSync(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    input: stdin,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ADD_ENV = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "ctr1",
  CNI_NETNS: "/var/run/netns/none",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
};

main("no CNI_COMMAND: the about text on stderr, exit 0, nothing on stdout", () => {
  const r = runMain({}, "");
  assert.is(r.status, 0);
  assert.is(r.stdout, "");
  assert.match(r.stderr, /^CNI plugin tiny \(weft\) version v/);
  assert.match(
    r.stderr,
    /\nCNI protocol versions supported: 0\.1\.0, 0\.2\.0, 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/,
  );
});

main("VERSION: compact JSON and a newline, exit 0", () => {
  const r = runMain({ CNI_COMMAND: "VERSION" }, "");
  assert.is(r.status, 0);
  assert.is(r.stdout, `{"cniVersion":"1.1.0","supportedVersions":${JSON.stringify(SUPPORTED)}}\n`);
});

main("ADD: the result indented like Go's MarshalIndent, exit 0", () => {
  const r = runMain(ADD_ENV, '{"cniVersion":"1.0.0","name":"n","type":"tiny"}');
  assert.is(r.status, 0, r.stderr);
  assert.is(
    r.stdout,
    `${JSON.stringify({ cniVersion: "1.0.0", ips: [{ address: "10.213.9.2/24" }] }, null, 4)}\n`,
  );
});

main("an error: the error document on stdout, exit 1", () => {
  const r = runMain({ CNI_COMMAND: "ADD" }, "");
  assert.is(r.status, 1);
  assert.equal(JSON.parse(r.stdout), {
    cniVersion: "1.1.0",
    code: 4,
    msg: "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing",
  });
  const plain = runMain(ADD_ENV, '{"cniVersion":"0.4.0","name":"n","fail":true}');
  assert.is(plain.status, 1);
  assert.equal(JSON.parse(plain.stdout), { cniVersion: "0.4.0", code: 999, msg: "plain failure" });
});

main("an unknown command: the config is decoded first, as skel does", () => {
  const bad = runMain({ CNI_COMMAND: "FOO" }, "nope");
  assert.is(bad.status, 1);
  assert.is(JSON.parse(bad.stdout).code, 6);
  const good = runMain({ CNI_COMMAND: "FOO" }, '{"cniVersion":"1.0.0","name":"n"}');
  assert.is(good.status, 1);
  assert.equal(JSON.parse(good.stdout), { cniVersion: "1.0.0", code: 4, msg: "unknown CNI_COMMAND: FOO" });
});

main("an invalid variable wins over the config", () => {
  const r = runMain({ ...ADD_ENV, CNI_IFNAME: "a b" }, "nope");
  assert.equal(JSON.parse(r.stdout).msg, "interface name contains / or : or whitespace characters");
});

main.run();
