#!/usr/bin/env node
// Makes the V8 code cache of weft's bundle (the SEA asset weft.cache, see cli/rest-loader.ts) by running
// real plugin calls and keeping what V8 compiled for them. Called by scripts/build.mjs:
//
//   node22 scripts/train-code-cache.mjs --entry TRAIN.cjs --bundle WEFT.cjs --out CACHE --work DIR
//
// The calls run in a sandbox of their own: new network and mount namespaces (and a user namespace when
// not root), a tmpfs on /run, so the bridge, veths, rules, netns and records they make exist nowhere else
// and vanish with it. Each call is one process that compiles the bundle with the cache the previous call
// left and writes it back, grown by what it compiled, at its exit; flannel's delegates run in its own
// process, as in the executable (the trainer is a copy of Node not named `node`, and CNI_PATH holds
// links to that same file). Exits 0 when a cache was written (even if some calls failed: it then holds
// less), 1 when no call could run; the build then makes a cache without training.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split("=", 2);
    if (k === "--sandboxed") o.sandboxed = true;
    else o[k.replace(/^--/, "")] = inline ?? argv[++i];
  }
  for (const k of ["entry", "bundle", "out", "work"]) {
    if (!o[k]) throw new Error(`train-code-cache: --${k} is required`);
  }
  return o;
}

const opts = args(process.argv.slice(2));
const say = (text) => process.stderr.write(`train-code-cache: ${text}\n`);

if (!opts.sandboxed) {
  // Root needs only its own network and mount namespaces; anyone else maps itself to root in a user
  // namespace (where the kernel allows unprivileged ones).
  const userns = process.getuid() === 0 ? [] : ["--user", "--map-root-user"];
  const r = spawnSync(
    "unshare",
    [
      ...userns,
      "--net",
      "--mount",
      "--fork",
      "--",
      process.execPath,
      ...process.argv.slice(1),
      "--sandboxed",
    ],
    { stdio: "inherit", env: cleanEnv() },
  );
  process.exit(r.status ?? 1);
}

/** The environment of every process here: nothing of the build's (NODE_OPTIONS would change V8's flags). */
function cleanEnv(extra = {}) {
  return { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", ...extra };
}

function sh(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: "utf8", env: cleanEnv() });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")}: ${r.error?.message ?? ""}${r.stderr}`);
}

// The sandbox: its own /run (netns mounts, xtables lock, weft's records), loopback up, one pod netns.
sh("mount", ["-t", "tmpfs", "-o", "mode=0755", "weft-train", "/run"]);
sh("ip", ["link", "set", "lo", "up"]);
sh("ip", ["netns", "add", "pod"]);

const work = opts.work;
rmSync(work, { recursive: true, force: true });
const bin = join(work, "bin");
mkdirSync(bin, { recursive: true });
// The trainer: this Node under another name (a file named `node` is never taken for weft's executable).
const trainer = join(work, "weft");
try {
  linkSync(process.execPath, trainer);
} catch {
  copyFileSync(process.execPath, trainer);
}
for (const name of ["flannel", "bridge", "host-local", "portmap"]) linkSync(trainer, join(bin, name));
writeFileSync(
  join(work, "subnet.env"),
  "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
);

const flannelConf = (cniVersion, extra = {}) => ({
  cniVersion,
  name: "cbr0",
  type: "flannel",
  subnetFile: join(work, "subnet.env"),
  dataDir: join(work, "flannel"),
  delegate: { hairpinMode: true, isDefaultGateway: true },
  ipam: { dataDir: join(work, "ipam") },
  ...extra,
});
const portmapConf = (cniVersion, extra = {}) => ({
  cniVersion,
  name: "cbr0",
  type: "portmap",
  capabilities: { portMappings: true },
  ...extra,
});
const hostPort = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] };

let cache = join(work, "cache-0");
let n = 0;
const failed = [];

/** One plugin call, as a runtime makes it, compiling with the cache so far and leaving it grown. */
function call(plugin, command, containerId, conf) {
  const next = join(work, `cache-${++n}`);
  const r = spawnSync(join(bin, plugin), [opts.entry], {
    input: JSON.stringify(conf),
    encoding: "utf8",
    timeout: 60_000,
    env: cleanEnv({
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: "/run/netns/pod",
      CNI_IFNAME: "eth0",
      CNI_PATH: bin,
      WEFT_CNI_SOCKET: "",
      WEFT_MULTICALL_NAME: plugin,
      WEFT_TRAIN_BUNDLE: opts.bundle,
      WEFT_TRAIN_CACHE_IN: cache,
      WEFT_TRAIN_CACHE_OUT: next,
    }),
  });
  if (existsSync(next)) cache = next;
  if (r.status !== 0) {
    failed.push(
      `${plugin} ${command}: ${(r.stdout || r.stderr || r.error?.message || "").trim().split("\n")[0]}`,
    );
    return undefined;
  }
  try {
    return r.stdout ? JSON.parse(r.stdout) : {};
  } catch {
    return {};
  }
}

// The kube-flannel list (0.3.1) with and without a hostPort, then the 1.0.0 list with CHECK.
for (const [id, ports] of [
  ["train1", hostPort],
  ["train2", undefined],
]) {
  const prev = call("flannel", "ADD", id, flannelConf("0.3.1"));
  const pm = portmapConf("0.3.1", { ...(ports ? { runtimeConfig: ports } : {}), prevResult: prev });
  if (prev) call("portmap", "ADD", id, pm);
  call("portmap", "DEL", id, portmapConf("0.3.1", ports ? { runtimeConfig: ports } : {}));
  call("flannel", "DEL", id, flannelConf("0.3.1"));
}
const prev = call("flannel", "ADD", "train3", flannelConf("1.0.0"));
if (prev) {
  call("flannel", "CHECK", "train3", flannelConf("1.0.0", { prevResult: prev }));
  const pm = portmapConf("1.0.0", { runtimeConfig: hostPort, prevResult: prev });
  if (call("portmap", "ADD", "train3", pm)) call("portmap", "CHECK", "train3", pm);
  call("portmap", "DEL", "train3", pm);
}
call("flannel", "DEL", "train3", flannelConf("1.0.0"));

if (n === 0 || !existsSync(cache) || cache.endsWith("cache-0")) {
  say(`no call left a cache${failed.length ? `: ${failed.join("; ")}` : ""}`);
  process.exit(1);
}
renameSync(cache, opts.out);
say(
  `${n - failed.length} of ${n} calls ran` +
    (failed.length ? ` (failed, the cache holds less: ${failed.join("; ")})` : ""),
);
rmSync(work, { recursive: true, force: true });
