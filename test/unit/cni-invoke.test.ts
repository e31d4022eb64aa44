import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { CmdArgs } from "../../shared/cni/env.js";
import { delegateEnv, findInPath, invokeDelegate, pluginError } from "../../shared/cni/invoke.js";
import { cniErrorOf, rejection } from "../helpers/cni-error.js";

const root = mkdtempSync(join(tmpdir(), "weft-cni-invoke-"));
const dirA = join(root, "a");
const dirB = join(root, "b");
const dirC = join(root, "c");
mkdirSync(dirA);
mkdirSync(dirB);
mkdirSync(dirC);

/** A delegate plugin: a shell script that records its stdin and environment next to itself. */
function writePlugin(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ncat > "$0.stdin"\nenv > "$0.env"\n${body}\n`, { mode: 0o755 });
  return path;
}

function envOf(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(`${path}.env`, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function callArgs(over: Partial<CmdArgs> = {}): CmdArgs {
  return {
    command: "ADD",
    containerId: "ctr1",
    netns: "/var/run/netns/pod1",
    ifname: "eth0",
    args: "IgnoreUnknown=1;K8S_POD_NAME=p",
    path: `${dirC}:${dirB}`,
    netnsOverride: "",
    stdin: Buffer.from("{}"),
    ...over,
  };
}

const find = suite("findInPath");

find("the first regular file in path order", () => {
  const inB = writePlugin(dirB, "dup", "true");
  writePlugin(dirC, "dup", "true");
  assert.is(findInPath("dup", [dirB, dirC]), inB);
  assert.is(findInPath("dup", [dirC, dirB]), join(dirC, "dup"));
});

find("directories and missing directories are skipped", () => {
  mkdirSync(join(dirA, "shadow"));
  const real = writePlugin(dirB, "shadow", "true");
  assert.is(findInPath("shadow", [join(root, "missing"), dirA, dirB]), real);
});

find("not found: libcni's message (999 once through skel)", () => {
  const e = cniErrorOf(() => findInPath("x", ["/a", "/b"]));
  assert.equal([e.code, e.msg], [999, 'failed to find plugin "x" in path [/a /b]']);
});

find("no name, a name with a slash, no paths", () => {
  assert.is(cniErrorOf(() => findInPath("", ["/a"])).msg, "no plugin name provided");
  assert.is(cniErrorOf(() => findInPath("../x", ["/a"])).msg, "invalid plugin name: ../x");
  assert.is(cniErrorOf(() => findInPath("x", [])).msg, "no paths provided");
});

find.run();

const errors = suite("pluginError: a failed delegate's output");

errors("an error object on stdout is taken as is", () => {
  const e = pluginError('{"code":7,"msg":"bad config","details":"no name"}', "noise", "exit status 1");
  assert.equal([e.code, e.msg, e.details], [7, "bad config", "no name"]);
  const noCode = pluginError('{"msg":"m"}', "", "exit status 1");
  assert.equal([noCode.code, noCode.msg, noCode.details], [0, "m", ""]);
});

errors("nothing on stdout or stderr", () => {
  const e = pluginError("", "", "exit status 1");
  assert.equal([e.code, e.msg], [0, "netplugin failed with no error message: exit status 1"]);
});

errors("stderr only: quoted with Go's %q, then the exit error", () => {
  const e = pluginError("", "boom\n", "exit status 2");
  assert.equal([e.code, e.msg], [0, 'netplugin failed: "boom\\n": exit status 2']);
});

errors("stdout that is not an error object", () => {
  for (const out of ["not json", "\n", "[1]"]) {
    const e = pluginError(out, "", "exit status 1");
    assert.is(e.code, 0);
    assert.ok(
      e.msg.startsWith(`netplugin failed but error parsing its diagnostic message ${JSON.stringify(out)}: `),
      e.msg,
    );
  }
});

errors(
  "stdout that is not JSON: why, in Go's json words (not JSON.parse's), as the reference says it",
  () => {
    const cases: Array<[string, string]> = [
      ["usage: weft <command>\n", "invalid character 'u' looking for beginning of value"],
      ['{"code": 7,}', "invalid character '}' looking for beginning of object key string"],
      ['{"code": 7', "unexpected end of JSON input"],
    ];
    for (const [out, why] of cases) {
      const e = pluginError(out, "", "exit status 2");
      assert.is(
        e.msg,
        `netplugin failed but error parsing its diagnostic message ${JSON.stringify(out)}: ${why}`,
      );
    }
  },
);

errors.run();

const exec = suite("invokeDelegate: exec of a foreign plugin");

// The last suite of the file cleans up the delegates all suites wrote.
exec.after(() => rmSync(root, { recursive: true, force: true }));

exec("the environment: ours, with the call's CNI_* and the verb replaced", () => {
  const env = delegateEnv(callArgs(), "DEL");
  assert.is(env.CNI_COMMAND, "DEL");
  assert.is(env.CNI_CONTAINERID, "ctr1");
  assert.is(env.CNI_NETNS, "/var/run/netns/pod1");
  assert.is(env.CNI_IFNAME, "eth0");
  assert.is(env.CNI_ARGS, "IgnoreUnknown=1;K8S_POD_NAME=p");
  assert.is(env.CNI_PATH, `${dirC}:${dirB}`);
  assert.is(env.PATH, process.env.PATH);
});

exec("the delegation chain goes to the delegate in WEFT_DELEGATION, the delegate's type last", async () => {
  const path = writePlugin(dirB, "ipam2", "exit 0");
  await invokeDelegate("DEL", "ipam2", "{}", callArgs({ delegation: ["flannel", "bridge"] }));
  assert.is(envOf(path).WEFT_DELEGATION, "flannel/bridge/ipam2");
  // Not inherited from this process: a call without a chain starts one.
  process.env.WEFT_DELEGATION = "stale/chain";
  try {
    await invokeDelegate("DEL", "ipam2", "{}", callArgs());
    assert.is(envOf(path).WEFT_DELEGATION, "ipam2");
  } finally {
    delete process.env.WEFT_DELEGATION;
  }
});

exec("a delegation loop: ADD refuses before the plugin starts; DEL succeeds without running it", async () => {
  const path = writePlugin(dirB, "bridge", "exit 0");
  rmSync(`${path}.stdin`, { force: true });
  const loop = await rejection(invokeDelegate("ADD", "bridge", "{}", callArgs({ delegation: ["bridge"] })));
  assert.is(loop.code, 7);
  assert.is(loop.msg, "delegation loop: bridge -> bridge");
  assert.is(await invokeDelegate("DEL", "bridge", "{}", callArgs({ delegation: ["bridge"] })), undefined);
  assert.not.ok(existsSync(`${path}.stdin`), "never started");
});

exec("ADD: stdin passed, env set, a result without cniVersion gets the config's", async () => {
  const path = writePlugin(dirB, "ipam1", `printf '{"ips":[{"address":"10.213.9.2/24"}]}'`);
  const conf = '{"cniVersion":"0.3.1","name":"n","type":"ipam1"}';
  const out = await invokeDelegate("ADD", "ipam1", conf, callArgs({ command: "CHECK" }));
  assert.equal(out, { ips: [{ address: "10.213.9.2/24" }], cniVersion: "0.3.1" });
  assert.is(readFileSync(`${path}.stdin`, "utf8"), conf);
  const env = envOf(path);
  assert.is(env.CNI_COMMAND, "ADD");
  assert.is(env.CNI_CONTAINERID, "ctr1");
  assert.is(env.CNI_IFNAME, "eth0");
  assert.is(env.CNI_NETNS, "/var/run/netns/pod1");
  assert.is(env.CNI_PATH, `${dirC}:${dirB}`);
});

exec("ADD: a result's own cniVersion is kept; a config without one means 0.1.0", async () => {
  writePlugin(dirB, "ipam2", `printf '{"cniVersion":"0.4.0","ips":[]}'`);
  const own = await invokeDelegate("ADD", "ipam2", '{"cniVersion":"1.0.0","name":"n"}', callArgs());
  assert.is(own?.cniVersion, "0.4.0");
  writePlugin(dirB, "ipam3", `printf '{"ip4":{"ip":"10.1.0.5/16"}}'`);
  const old = await invokeDelegate("ADD", "ipam3", Buffer.from('{"name":"n"}'), callArgs());
  assert.is(old?.cniVersion, "0.1.0");
});

exec("ADD: output that is not JSON", async () => {
  writePlugin(dirB, "garbage", "echo not-json");
  const e = await rejection(
    invokeDelegate("ADD", "garbage", '{"cniVersion":"1.0.0","name":"n"}', callArgs()),
  );
  assert.is(e.code, 999);
  assert.ok(e.msg.startsWith("failed to unmarshal raw result: "), e.msg);
});

exec("DEL, CHECK, GC, STATUS: output ignored, nothing returned", async () => {
  const path = writePlugin(dirB, "quiet", "echo whatever");
  for (const verb of ["DEL", "CHECK", "GC", "STATUS"] as const) {
    assert.is(
      await invokeDelegate(verb, "quiet", '{"cniVersion":"1.1.0","name":"n"}', callArgs()),
      undefined,
    );
    assert.is(envOf(path).CNI_COMMAND, verb);
  }
});

exec("an error object from the delegate becomes the same CniError", async () => {
  writePlugin(
    dirB,
    "failing",
    `printf '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"}'; exit 1`,
  );
  const e = await rejection(
    invokeDelegate("ADD", "failing", '{"cniVersion":"1.0.0","name":"n"}', callArgs()),
  );
  assert.equal([e.code, e.msg, e.details], [11, "busy", "try later"]);
});

exec("a silent failure reports Go's exit error text", async () => {
  writePlugin(dirB, "silent", "exit 3");
  const e = await rejection(invokeDelegate("DEL", "silent", '{"cniVersion":"1.0.0","name":"n"}', callArgs()));
  assert.equal([e.code, e.msg], [0, "netplugin failed with no error message: exit status 3"]);
  writePlugin(dirB, "killed", "kill -9 $$");
  const k = await rejection(invokeDelegate("DEL", "killed", '{"cniVersion":"1.0.0","name":"n"}', callArgs()));
  assert.is(k.msg, "netplugin failed with no error message: signal: killed");
});

exec("stderr only", async () => {
  writePlugin(dirB, "stderronly", "echo oops >&2; exit 1");
  const e = await rejection(
    invokeDelegate("ADD", "stderronly", '{"cniVersion":"1.0.0","name":"n"}', callArgs()),
  );
  assert.is(e.msg, 'netplugin failed: "oops\\n": exit status 1');
});

exec("a file without execute permission", async () => {
  const path = writePlugin(dirB, "noexec", "true");
  chmodSync(path, 0o644);
  const e = await rejection(invokeDelegate("ADD", "noexec", '{"cniVersion":"1.0.0","name":"n"}', callArgs()));
  assert.is(e.msg, `netplugin failed with no error message: fork/exec ${path}: permission denied`);
});

exec("a missing delegate", async () => {
  const e = await rejection(invokeDelegate("ADD", "nope", "{}", callArgs()));
  assert.is(e.msg, `failed to find plugin "nope" in path [${dirC} ${dirB}]`);
});

exec("text file busy: retried until the writer closes the file", async () => {
  const path = join(dirB, "busy");
  const fd = openSync(path, "w", 0o755);
  writeSync(fd, `#!/bin/sh\nprintf '{"cniVersion":"1.0.0"}'\n`);
  chmodSync(path, 0o755);
  const closer = setTimeout(() => closeSync(fd), 200);
  try {
    const out = await invokeDelegate("ADD", "busy", '{"cniVersion":"1.0.0","name":"n"}', callArgs());
    assert.equal(out, { cniVersion: "1.0.0" });
  } finally {
    clearTimeout(closer);
    try {
      closeSync(fd);
    } catch {
      // already closed by the timer
    }
  }
});

exec.run();
