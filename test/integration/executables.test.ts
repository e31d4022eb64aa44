import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type PluginCall, type PluginRun, pluginRunOf, runPlugin } from "../helpers/plugin.js";

/**
 * The packaged executables, run the way a container runtime runs them: a clean environment whose PATH
 * has no Node.js, CNI_* variables, the config on stdin. Nothing is built here: `npm test` runs
 * `npm run build` before the integration tests; WEFT_DIST points at another build directory.
 */

const PLUGIN_NAMES = ["flannel", "bridge", "host-local", "portmap"];
const ALL_NAMES = ["weft", "weftd", ...PLUGIN_NAMES];
const REQUIRED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

function projectRoot(): string {
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    const pj = join(dir, "package.json");
    if (existsSync(pj) && JSON.parse(readFileSync(pj, "utf8")).name === "weft") return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

const root = projectRoot();
const dist = resolve(process.env.WEFT_DIST || join(root, "dist", "bin"));

function exe(name: string): string {
  const path = join(dist, name);
  if (!existsSync(path)) {
    throw new Error(
      `${path} does not exist: build the executables first (\`npm run build\`, or set WEFT_DIST to a build directory)`,
    );
  }
  return path;
}

let work = "";
let noNodePath = "";

/**
 * A PATH with the usual system directories but no `node`: /usr/bin is shadowed by a directory of links
 * to everything in it except Node.js and its package managers.
 */
function pathWithoutNode(dir: string): string {
  const shadow = join(dir, "usr-bin");
  mkdirSync(shadow);
  for (const name of readdirSync("/usr/bin")) {
    if (/^(node|nodejs|npm|npx|corepack)$/.test(name)) continue;
    symlinkSync(join("/usr/bin", name), join(shadow, name));
  }
  const path = ["/usr/sbin", "/sbin", shadow].join(":");
  for (const d of path.split(":")) {
    if (existsSync(join(d, "node"))) throw new Error(`test PATH still has node in ${d}`);
  }
  return path;
}

test.before(() => {
  work = mkdtempSync(join(tmpdir(), "weft-exe-"));
  noNodePath = pathWithoutNode(work);
});

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A runtime-like call: nothing from our environment but what the call sets, and PATH without node. */
function call(name: string, c: PluginCall, stdin: string | object = ""): PluginRun {
  return runPlugin(exe(name), { ...c, cleanEnv: true, extraEnv: { PATH: noNodePath, ...c.extraEnv } }, stdin);
}

/** The whole of stdout is one JSON object (runPlugin parses all of it or gives undefined). */
function singleJsonObject(r: PluginRun): Record<string, unknown> {
  assert.ok(r.json, `stdout is not one JSON document: ${JSON.stringify(r.stdout)} (stderr: ${r.stderr})`);
  assert.not.ok(Array.isArray(r.json), "stdout is an array, not an object");
  return r.json!;
}

function assertCniError(r: PluginRun, code: number, what: string): Record<string, unknown> {
  assert.is(r.status, 1, `${what}: exit status (stdout ${r.stdout}, stderr ${r.stderr})`);
  const doc = singleJsonObject(r);
  assert.is(doc.code, code, `${what}: error code in ${r.stdout}`);
  assert.type(doc.msg, "string", `${what}: msg`);
  assert.type(doc.cniVersion, "string", `${what}: cniVersion`);
  return doc;
}

const attachment = (overrides: Partial<PluginCall> = {}): PluginCall => ({
  command: "ADD",
  containerId: "weft-exe-test",
  netns: "/var/run/netns/weft-exe-test-does-not-exist",
  ifname: "eth0",
  path: "/opt/cni/bin",
  ...overrides,
});

test("every name is a hard link to the one 0755 executable", () => {
  const main = statSync(exe("weft"));
  for (const name of ALL_NAMES) {
    const st = statSync(exe(name));
    assert.ok(st.isFile(), `${name} is a regular file`);
    assert.is(st.mode & 0o777, 0o755, `${name} mode`);
    assert.equal([st.dev, st.ino], [main.dev, main.ino], `${name} is the same file as weft`);
  }
});

test("VERSION from every plugin name lists the spec versions, compact, on stdout only", () => {
  for (const name of PLUGIN_NAMES) {
    const r = call(name, { command: "VERSION" });
    assert.is(r.status, 0, `${name} VERSION exit status (stderr ${r.stderr})`);
    assert.is(r.stderr, "", `${name} VERSION writes nothing to stderr`);
    const doc = singleJsonObject(r);
    const supported = doc.supportedVersions as string[];
    assert.ok(Array.isArray(supported), `${name}: supportedVersions in ${r.stdout}`);
    for (const v of REQUIRED_VERSIONS) assert.ok(supported.includes(v), `${name} supports ${v}`);
    assert.ok(supported.includes(doc.cniVersion as string), `${name}: cniVersion is a supported one`);
  }
});

test("weft and weftd answer --version with the package version", () => {
  const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
  for (const name of ["weft", "weftd"]) {
    const r = spawnSync(exe(name), ["--version"], { env: { PATH: noNodePath }, encoding: "utf8" });
    assert.is(r.status, 0, `${name} --version exit status (stderr ${r.stderr})`);
    assert.match(r.stdout, new RegExp(`^${name} v${version.replaceAll(".", "\\.")}\\b`), `${name} --version`);
  }
});

test("without CNI_COMMAND each plugin prints its about text on stderr and exits 0", () => {
  for (const name of PLUGIN_NAMES) {
    // No CNI_* at all: runPlugin always sets CNI_COMMAND, so this one is spawned directly.
    const r = spawnSync(exe(name), [], { env: { PATH: noNodePath }, input: "", encoding: "utf8" });
    assert.is(r.status, 0, `${name} about: exit status`);
    assert.is(r.stdout, "", `${name} about: stdout stays empty`);
    assert.match(r.stderr, `CNI plugin ${name} `, `${name} about text`);
    assert.match(r.stderr, /CNI protocol versions supported: .*1\.1\.0/, `${name} about lists versions`);
  }
});

test("garbage config for ADD is one decode error (code 6), exit 1", () => {
  for (const name of PLUGIN_NAMES) {
    assertCniError(call(name, attachment(), "this is not json"), 6, `${name} garbage`);
  }
});

test("a missing CNI_CONTAINERID is code 4", () => {
  const conf = { cniVersion: "1.0.0", name: "weft-exe", type: "bridge" };
  for (const name of PLUGIN_NAMES) {
    const doc = assertCniError(call(name, attachment({ containerId: undefined }), conf), 4, `${name} env`);
    assert.match(doc.msg as string, "CNI_CONTAINERID", `${name}: names the variable`);
  }
});

test("an unsupported cniVersion is code 1", () => {
  const conf = { cniVersion: "9.9.9", name: "weft-exe", type: "bridge" };
  for (const name of PLUGIN_NAMES) {
    const doc = assertCniError(call(name, attachment(), conf), 1, `${name} version`);
    assert.is(doc.msg, "incompatible CNI versions", `${name} version msg`);
  }
});

test("an unknown CNI_COMMAND is code 4", () => {
  const conf = { cniVersion: "1.0.0", name: "weft-exe", type: "bridge" };
  for (const name of PLUGIN_NAMES) {
    const doc = assertCniError(call(name, attachment({ command: "FROB" }), conf), 4, `${name} command`);
    assert.is(doc.msg, "unknown CNI_COMMAND: FROB", `${name} command msg`);
  }
});

// ---- The in-process delegate: flannel -> host-local without a second process start -------------------

/**
 * A CNI_PATH directory holding the suite: `weft` and its names as hard links to one file (the way
 * `weft install` lays them out). Linked to the build when on the same filesystem, else copied once.
 */
function installSuite(dir: string): void {
  mkdirSync(dir);
  const main = join(dir, "weft");
  try {
    linkSync(exe("weft"), main);
  } catch {
    copyFileSync(exe("weft"), main);
  }
  for (const name of ALL_NAMES.slice(1)) linkSync(main, join(dir, name));
}

interface TracedRun extends PluginRun {
  /** Every program this run started (the plugin itself first), from strace's execve records. */
  execs: string[];
}

/** runPlugin's runtime-like environment, under `strace -f -e execve` to see which processes start. */
function runTraced(plugin: string, c: PluginCall, stdin: object): TracedRun {
  const trace = join(work, `${uniqueName("tr")}.strace`);
  const env: Record<string, string> = { PATH: noNodePath, CNI_COMMAND: c.command };
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
  if (c.netns !== undefined) env.CNI_NETNS = c.netns;
  if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname;
  if (c.path !== undefined) env.CNI_PATH = c.path;
  const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=execve", "-o", trace, "--", plugin], {
    env,
    input: JSON.stringify(stdin),
    encoding: "utf8",
  });
  if (r.error) throw new Error(`cannot run strace (scripts/host-deps.sh installs it): ${r.error.message}`);
  const execs = readFileSync(trace, "utf8")
    .split("\n")
    .map((line) => /execve\("([^"]*)".*= 0$/.exec(line)?.[1])
    .filter((p): p is string => p !== undefined);
  return { ...pluginRunOf(r), execs };
}

test("flannel runs a host-local delegate that is its own executable in-process, and execs any other", () => {
  assertRoot();
  const octet = 100 + (process.pid % 150);
  const suite = join(work, "cni-bin");
  const foreign = join(work, "foreign-bin");
  installSuite(suite);
  // A byte-identical copy is a different file: invoke must exec it like any other plugin.
  mkdirSync(foreign);
  copyFileSync(exe("weft"), join(foreign, "host-local"));
  const subnetFile = join(work, "subnet.env");
  writeFileSync(
    subnetFile,
    `FLANNEL_NETWORK=10.${octet}.0.0/16\nFLANNEL_SUBNET=10.${octet}.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  );
  const netName = uniqueName("wx");
  const ipamDir = join(work, "ipam");
  const conf = {
    cniVersion: "1.0.0",
    name: netName,
    type: "flannel",
    subnetFile,
    dataDir: join(work, "flannel"),
    delegate: { type: "host-local" },
    ipam: { dataDir: ipamDir },
  };
  const flannel = join(suite, "flannel");
  const ns = TestNetns.create("wx");
  try {
    for (const [label, cniPath, expectDelegateExecs] of [
      ["own executable", suite, []],
      ["foreign copy", foreign, [join(foreign, "host-local")]],
    ] as const) {
      const containerId = uniqueName("cid");
      const base = { containerId, netns: ns.path, ifname: "eth0", path: cniPath };

      const add = runTraced(flannel, { ...base, command: "ADD" }, conf);
      assert.is(add.status, 0, `${label} ADD: ${add.stdout} ${add.stderr}`);
      const ips = (add.json?.ips ?? []) as Array<{ address: string }>;
      assert.is(ips.length, 1, `${label} ADD result: ${add.stdout}`);
      const ip = ips[0]!.address.split("/")[0]!;
      assert.match(ip, new RegExp(`^10\\.${octet}\\.7\\.\\d+$`), `${label}: address from the flannel subnet`);
      const reservation = join(ipamDir, netName, ip);
      assert.match(readFileSync(reservation, "utf8"), containerId, `${label}: host-local reserved ${ip}`);
      assert.equal(add.execs[0], flannel, `${label}: the traced program is flannel`);
      const delegated = add.execs.filter((p) => p.startsWith(`${suite}/`) || p.startsWith(`${foreign}/`));
      assert.equal(delegated.slice(1), expectDelegateExecs, `${label} ADD: plugin processes started`);

      const del = runTraced(flannel, { ...base, command: "DEL" }, conf);
      assert.is(del.status, 0, `${label} DEL: ${del.stdout} ${del.stderr}`);
      assert.not.ok(existsSync(reservation), `${label}: DEL released ${ip}`);
      assert.not.ok(existsSync(join(work, "flannel", containerId)), `${label}: DEL removed the saved config`);
      const delDelegated = del.execs.filter((p) => p.startsWith(`${suite}/`) || p.startsWith(`${foreign}/`));
      assert.equal(delDelegated.slice(1), expectDelegateExecs, `${label} DEL: plugin processes started`);
    }
  } finally {
    ns.delete();
  }
});

test("a delegate missing from CNI_PATH is invoke.FindInPath's error", () => {
  const a = join(work, "no-such-dir-a");
  const b = join(work, "no-such-dir-b");
  const subnetFile = join(work, "subnet-missing.env");
  writeFileSync(
    subnetFile,
    "FLANNEL_NETWORK=10.99.0.0/16\nFLANNEL_SUBNET=10.99.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
  const conf = {
    cniVersion: "1.0.0",
    name: uniqueName("wx"),
    type: "flannel",
    subnetFile,
    dataDir: join(work, "flannel-missing"),
    delegate: { type: "host-local" },
    ipam: { dataDir: join(work, "ipam-missing") },
  };
  const r = call("flannel", attachment({ path: `${a}:${b}` }), conf);
  assert.is(r.status, 1, `exit status: ${r.stdout} ${r.stderr}`);
  const doc = singleJsonObject(r);
  assert.match(doc.msg as string, `failed to find plugin "host-local" in path [${a} ${b}]`);
});

test.run();
