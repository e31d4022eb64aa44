import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Verb } from "../../shared/cni/env.js";
import { CniError } from "../../shared/cni/errors.js";
import type { Plugin } from "../../shared/cni/plugin.js";
import { decodeConfig, runVerb } from "../../shared/cni/skel.js";
import { readStdin } from "../../shared/cni/stdin.js";
import { createLogger } from "../../shared/log.js";
import { cmdArgs } from "../helpers/cmd-args.js";
import { cniErrorOf, expectRejection } from "../helpers/cni-error.js";

const log = createLogger("cni-config-test", {});

const expectError = expectRejection;

/** A plugin whose verbs all succeed, counting calls, so a test can tell a check stopped the call. */
function countingPlugin(): Plugin & { calls: number } {
  const p = {
    name: "counting",
    calls: 0,
    async add() {
      p.calls++;
      return { cniVersion: "1.1.0", ips: [{ address: "10.213.9.2/24" }] };
    },
    async del() {
      p.calls++;
    },
    async check() {
      p.calls++;
    },
    async gc() {
      p.calls++;
    },
    async status() {
      p.calls++;
    },
  };
  return p;
}

const call = (command: Verb, stdin: string | object) => cmdArgs(command, stdin);

const decode = suite("config decoding (skel's validateConfig and DecodeVersion)");

decode("not JSON: code 6", async () => {
  await expectError(decodeConfig(Buffer.from("nope")), 6, /^error unmarshall network config: /);
  await expectError(decodeConfig(Buffer.from("")), 6, /^error unmarshall network config: /);
  await expectError(decodeConfig(Buffer.from('{"name":"n"')), 6, /^error unmarshall network config: /);
});

decode("not JSON: Go's syntax error text, never JSON.parse's (lab: bridge v1.1.1)", async () => {
  for (const [text, msg] of [
    ["", "unexpected end of JSON input"],
    ['{"name":"n"', "unexpected end of JSON input"],
    ["nope", "invalid character 'o' in literal null (expecting 'u')"],
    ['{"name":"n"}x', "invalid character 'x' after top-level value"],
    ['{"name" "n"}', "invalid character '\"' after object key"],
    ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
    ['{"mtu":1.}', "invalid character '}' after decimal point in numeric literal"],
    ['{"a":"\t"}', "invalid character '\\t' in string literal"],
    ["\ufeff{}", "invalid character 'ï' looking for beginning of value"],
  ]) {
    await expectError(decodeConfig(Buffer.from(text!)), 6, `error unmarshall network config: ${msg}`);
  }
});

decode("JSON that is not an object: code 6 with Go's text", async () => {
  const goValue = 'Go value of type struct { Name string "json:\\"name\\"" }';
  for (const [doc, kind] of [
    ["[1]", "array"],
    ["5", "number"],
    ['"str"', "string"],
    ["true", "bool"],
  ]) {
    await expectError(
      decodeConfig(Buffer.from(doc!)),
      6,
      `error unmarshall network config: json: cannot unmarshal ${kind} into ${goValue}`,
    );
  }
});

decode("null is an empty config: missing name (lab: code 7)", async () => {
  await expectError(decodeConfig(Buffer.from("null")), 7, "missing network name");
});

decode("missing or empty name: code 7", async () => {
  await expectError(decodeConfig(Buffer.from('{"cniVersion":"1.0.0"}')), 7, "missing network name");
  await expectError(decodeConfig(Buffer.from('{"name":""}')), 7, "missing network name");
  await expectError(decodeConfig(Buffer.from('{"name":null}')), 7, "missing network name");
});

decode("invalid name characters: code 7 with the name as details", async () => {
  await expectError(
    decodeConfig(Buffer.from('{"name":"a b"}')),
    7,
    "invalid characters found in network name",
    "a b",
  );
  await expectError(
    decodeConfig(Buffer.from('{"name":"-x"}')),
    7,
    "invalid characters found in network name",
    "-x",
  );
});

decode("a name that is not a string: code 6 (lab: bridge v1.1.1)", async () => {
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":"1.0.0","name":5}')),
    6,
    "error unmarshall network config: json: cannot unmarshal number into Go struct field .name of type string",
  );
  await expectError(
    decodeConfig(Buffer.from('{"name":{}}')),
    6,
    "error unmarshall network config: json: cannot unmarshal object into Go struct field .name of type string",
  );
});

decode("a cniVersion that is not a string: code 6 (lab: bridge v1.1.1)", async () => {
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":3,"name":"n","type":"bridge"}')),
    6,
    "decoding version from network config: json: cannot unmarshal number into Go struct field .cniVersion of type string",
  );
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":true,"name":"n"}')),
    6,
    "decoding version from network config: json: cannot unmarshal bool into Go struct field .cniVersion of type string",
  );
});

decode("other wrong types are invalid config (code 7), naming the field as Go's decoder does", async () => {
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":"1.0.0","name":"n","capabilities":{"portMappings":"yes"}}')),
    7,
    "json: cannot unmarshal string into Go struct field NetConf.capabilities of type bool",
  );
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":"1.0.0","name":"n","type":5}')),
    7,
    "json: cannot unmarshal number into Go struct field NetConf.type of type string",
  );
  await expectError(
    decodeConfig(Buffer.from('{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"1.1.1.1"}}')),
    7,
    "json: cannot unmarshal string into Go struct field DNS.dns.nameservers of type []string",
  );
  await expectError(
    decodeConfig(
      Buffer.from('{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c"}]}'),
    ),
    7,
    /cni.dev~1valid-attachments\/0/,
  );
});

decode("a valid config decodes with unknown keys kept; no cniVersion reads as empty", async () => {
  const conf = await decodeConfig(Buffer.from('{"name":"cbr0","type":"bridge","hairpinMode":true}'));
  assert.equal(conf, { name: "cbr0", type: "bridge", hairpinMode: true, cniVersion: "" });
  const nullVersion = await decodeConfig(Buffer.from('{"name":"cbr0","cniVersion":null}'));
  assert.equal(nullVersion, { name: "cbr0", cniVersion: "" });
});

decode.run();

const versions = suite("version checks (skel's reconciler and verb gates)");

versions("unsupported cniVersion: code 1 with the reference's details", async () => {
  const p = countingPlugin();
  await expectError(
    runVerb(p, call("ADD", { cniVersion: "9.9.9", name: "n" }), log),
    1,
    "incompatible CNI versions",
    'config is "9.9.9", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
  );
  await expectError(
    runVerb(p, call("DEL", { cniVersion: "1.0", name: "n" }), log),
    1,
    "incompatible CNI versions",
    'config is "1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
  );
  assert.is(p.calls, 0);
});

versions("the version is checked before the rest of the config (the plugin's own parse)", async () => {
  await expectError(
    runVerb(countingPlugin(), call("ADD", { cniVersion: "9.9.9", name: "n", capabilities: { x: "y" } }), log),
    1,
    "incompatible CNI versions",
    'config is "9.9.9", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
  );
});

versions("CHECK below 0.4.0: code 1", async () => {
  const p = countingPlugin();
  for (const v of ["0.3.1", "0.3.0", "0.2.0", ""]) {
    await expectError(
      runVerb(p, call("CHECK", { cniVersion: v, name: "n" }), log),
      1,
      "config version does not allow CHECK",
    );
  }
  await runVerb(p, call("CHECK", { cniVersion: "0.4.0", name: "n" }), log);
  assert.is(p.calls, 1);
});

versions("GC and STATUS below 1.1.0: code 1", async () => {
  const p = countingPlugin();
  for (const verb of ["GC", "STATUS"] as const) {
    for (const v of ["1.0.0", "0.4.0"]) {
      await expectError(
        runVerb(p, call(verb, { cniVersion: v, name: "n" }), log),
        1,
        `config version does not allow ${verb}`,
      );
    }
    await runVerb(p, call(verb, { cniVersion: "1.1.0", name: "n" }), log);
  }
  assert.is(p.calls, 2);
});

versions("CHECK/GC/STATUS above every supported version: the gate's own message", async () => {
  for (const verb of ["CHECK", "GC", "STATUS"] as const) {
    await expectError(
      runVerb(countingPlugin(), call(verb, { cniVersion: "9.9.9", name: "n" }), log),
      1,
      `plugin version does not allow ${verb}`,
    );
  }
});

versions("CHECK with an unparsable version: code 6 with Go's ParseVersion text", async () => {
  await expectError(
    runVerb(countingPlugin(), call("CHECK", { cniVersion: "abc", name: "n" }), log),
    6,
    'failed to convert major version part "abc": strconv.Atoi: parsing "abc": invalid syntax',
  );
  await expectError(
    runVerb(countingPlugin(), call("GC", { cniVersion: "1.1.0.0", name: "n" }), log),
    6,
    'invalid version "1.1.0.0": too many parts',
  );
});

versions("the name is checked before the version", async () => {
  await expectError(
    runVerb(countingPlugin(), call("ADD", { cniVersion: "9.9.9" }), log),
    7,
    "missing network name",
  );
});

versions.run();

const stdin = suite("readStdin");

const dir = mkdtempSync(join(tmpdir(), "weft-cni-stdin-"));
stdin.after(() => rmSync(dir, { recursive: true, force: true }));

stdin("reads a whole file descriptor", () => {
  const path = join(dir, "conf.json");
  const body = JSON.stringify({ cniVersion: "1.0.0", name: "n", pad: "x".repeat(200_000) });
  writeFileSync(path, body);
  const fd = openSync(path, "r");
  try {
    assert.is(readStdin(1 << 20, fd).toString("utf8"), body);
  } finally {
    closeSync(fd);
  }
});

stdin("over the cap: code 5", () => {
  const path = join(dir, "big.json");
  writeFileSync(path, Buffer.alloc(100_001, 0x20));
  const fd = openSync(path, "r");
  try {
    const e = cniErrorOf(() => readStdin(100_000, fd));
    assert.is(e.code, 5);
    assert.is(e.msg, "error reading from stdin: input exceeds 100000 bytes");
  } finally {
    closeSync(fd);
  }
  // Exactly at the cap is fine.
  const ok = openSync(path, "r");
  try {
    assert.is(readStdin(100_001, ok).length, 100_001);
  } finally {
    closeSync(ok);
  }
});

/** A FIFO fed by another process, read the way a plugin reads the runtime's pipe. */
async function readFromPipe(bytes: number, limit: number): Promise<Buffer | CniError> {
  const fifo = join(dir, `fifo-${bytes}`);
  const mk = spawn("mkfifo", [fifo]);
  await new Promise((res) => mk.on("close", res));
  const writer = spawn("sh", ["-c", `head -c ${bytes} /dev/zero > '${fifo}'`]);
  const done = new Promise((res) => writer.on("close", res));
  // Blocks until the writer opens its end.
  const fd = openSync(fifo, "r");
  try {
    return readStdin(limit, fd);
  } catch (err) {
    return err as CniError;
  } finally {
    closeSync(fd);
    await done;
  }
}

stdin("reads a pipe to its end, and stops a pipe over the cap", async () => {
  const whole = await readFromPipe(300_000, 1 << 20);
  assert.ok(Buffer.isBuffer(whole));
  assert.is((whole as Buffer).length, 300_000);
  const over = await readFromPipe(300_000, 200_000);
  assert.instance(over, CniError);
  assert.is((over as CniError).code, 5);
});

stdin.run();

const teardown = suite("DEL decodes what it can; other verbs refuse a config of the wrong types");

teardown("a key of the wrong type fails ADD but is left out of DEL, which then runs", async () => {
  let seen: Record<string, unknown> | undefined;
  const p: Plugin = {
    name: "typed",
    schema: { type: "object", properties: { mtu: { type: "integer" }, keep: { type: "string" } } },
    configContext: "failed to load netconf",
    async add() {
      return { cniVersion: "1.0.0" };
    },
    async del(ctx) {
      seen = ctx.conf;
    },
  };
  const doc = { cniVersion: "1.0.0", name: "n", type: "typed", mtu: "1450", keep: "me" };
  await expectError(
    runVerb(p, call("ADD", doc), log),
    7,
    "failed to load netconf: json: cannot unmarshal string into Go struct field NetConf.mtu of type int",
  );
  await runVerb(p, call("DEL", doc), log);
  assert.equal(seen, { cniVersion: "1.0.0", name: "n", type: "typed", keep: "me" });
});

teardown(
  "a member the schema refuses is removed from DEL's config (the whole list for a bad entry)",
  async () => {
    let seen: Record<string, unknown> | undefined;
    const p: Plugin = {
      name: "routed",
      schema: {
        type: "object",
        properties: {
          ipam: {
            type: "object",
            properties: {
              routes: { type: "array", items: { type: "object", required: ["dst"], properties: {} } },
              dataDir: { type: "string" },
            },
          },
        },
      },
      async del(ctx) {
        seen = ctx.conf;
      },
    };
    const doc = {
      cniVersion: "1.0.0",
      name: "n",
      type: "routed",
      ipam: { routes: [{ dst: "0.0.0.0/0" }, {}], dataDir: "/d" },
    };
    await expectError(
      runVerb(p, call("CHECK", doc), log),
      7,
      "invalid network config: /ipam/routes/1 must have required property 'dst'",
    );
    await runVerb(p, call("DEL", doc), log);
    assert.equal(seen?.ipam, { dataDir: "/d" });
  },
);

teardown.run();
