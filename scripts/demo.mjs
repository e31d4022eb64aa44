#!/usr/bin/env node
// `npm run demo`: a small flannel cluster on this one machine, built the way an operator builds one.
//
//   - N simulated nodes (default 3): network namespaces whose eth0 is a port of one underlay bridge, itself in
//     a namespace of its own (the "hub"), as test/helpers/underlay.ts makes them;
//   - `weft install` into each node's own CNI dirs (<run>/<node>/bin and <run>/<node>/net.d), as the init
//     container does on a real node;
//   - `weftd` on each node, the packaged dist/bin/weftd, on one store: the embedded file store (a directory
//     the daemons share) or, with --store etcd, a throwaway etcd in the hub that every node reaches over its
//     eth0; waits for each node's /readyz;
//   - two pods per node, ADDed by the libcni client (test/tools/cnitool) with the conflist `weft install`
//     put into the node's conf dir and the plugins it put into the node's bin dir (NETCONFPATH and CNI_PATH,
//     as kubelet's runtime finds them in /etc/cni/net.d and /opt/cni/bin): flannel -> bridge -> host-local,
//     then portmap with the portMappings capability (CAP_ARGS) for the first pod, which publishes a hostPort;
//   - shows the nodes (subnet, backend, routes), the pods (addresses), a pod-to-pod ping matrix with the
//     latencies, the hostPort reached from another node and from a pod there, and `weft doctor` on a node;
//   - DELs the pods through libcni and removes everything the run created (processes, namespaces with
//     every link, route and iptables rule in them, files), also on Ctrl-C or SIGTERM.
//
// Private state per node: the kube-flannel list names flanneld's and the plugins' host paths
// (/run/flannel/subnet.env, /var/lib/cni/flannel, /var/lib/cni/networks). Rather than giving every node
// a private mount namespace bound over those paths (one more long-lived object per node, and every command
// would have to enter it), each node gets its own copy of the list with subnetFile, dataDir and the
// ipam's dataDir pointing into the node's directory, handed to `weft install --conflist`; libcni's cache
// goes there too (CNI_CACHE_DIR). Everything else a node holds (cni0, flannel.1, veths, routes, iptables
// rules) lives in its network namespace and goes with it; nothing is created in the host's namespace,
// and cleanup checks the host's nat table for the run's tag all the same.
//
// Every object carries the run's tag (default wd + 4 random characters): namespaces `<tag>-hub`,
// `<tag>-node<i>`, `<tag>-node<i>-<a|b>` (the pods; also their container IDs), the directory
// <tmpdir>/weft-demo-<tag>, and WEFT_DEMO_RUN=<tag> in the environment of every long-lived process. Cleanup
// works from the tag alone: every process in one of those namespaces (`ip netns pids`: weftd, its
// `ip monitor`, etcd, the pods' servers) or carrying the tag (one whose namespace is already gone), then
// the namespaces, then the directory; so `--cleanup <tag>` removes a run kept with --keep, or one killed
// with SIGKILL.
//
//   node scripts/demo.mjs [--backend vxlan|host-gw] [--nodes N] [--store file|etcd] [--keep] [--tag TAG]
//   node scripts/demo.mjs --cleanup TAG
//
// `npm run demo` installs the host packages (scripts/host-deps.sh) and builds dist/bin first; run directly,
// the script builds dist/bin only when it is missing (WEFT_BIN_DIR points elsewhere). Needs root. The last
// line says whether every pod reached every other pod; the exit status is 0 when everything worked.
import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const distBin = resolve(process.env.WEFT_BIN_DIR ?? join(root, "dist", "bin"));
// Where the Go test clients are built (as test/helpers/cnitool.ts: WEFT_TOOLS_DIR, default build/tools).
const cnitoolDir = join(resolve(process.env.WEFT_TOOLS_DIR ?? join(root, "build", "tools")), "cnitool");
const NETWORK = "10.244.0.0/16";
const UNDERLAY = "192.168.77"; // private to the run's namespaces: two runs never meet
const HUB_IP = `${UNDERLAY}.254`;
const HEALTH_PORT = 9100;
const HOST_PORT = 30080;
const CONTAINER_PORT = 80;
const MAX_NODES = 10;
const USAGE = `usage: node scripts/demo.mjs [--backend vxlan|host-gw] [--nodes N] [--store file|etcd] [--keep] [--tag TAG]
       node scripts/demo.mjs --cleanup TAG

  --backend vxlan|host-gw   weftd's backend (default vxlan)
  --nodes N                 simulated nodes, 2..${MAX_NODES} (default 3); two pods on each
  --store file|etcd         the embedded file store (default) or a throwaway etcd in the underlay
  --keep                    leave everything running and print how to look around and clean up
  --tag TAG                 the run's tag (default wd + 4 random characters; [a-z0-9], 2..10)
  --cleanup TAG             remove what a run with that tag left (after --keep, or a killed run)`;

// ---------------------------------------------------------------------------------------------------------
// Output

const tty = process.stdout.isTTY;
const paint = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const OK = paint("32", "ok  ");
const BAD = paint("31", "FAIL");
const say = (line = "") => process.stdout.write(`${line}\n`);
const step = (title) => say(`\n${paint("1;36", "==>")} ${paint("1", title)}`);
const indent = (text, pad = "    ") =>
  text
    .trimEnd()
    .split("\n")
    .map((l) => `${pad}${l}`)
    .join("\n");
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const t0 = performance.now();

// ---------------------------------------------------------------------------------------------------------
// Commands: every child is tracked, so an interrupt can end what is running and stop the run from starting
// anything more.

const running = new Set();
let aborted = false;

class Aborted extends Error {}

/** Runs a command; resolves { code, stdout, stderr } (code null on a signal), never rejects, except Aborted. */
function run(cmd, args, o = {}) {
  if (aborted) return Promise.reject(new Aborted("interrupted"));
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, {
      env: o.env ?? process.env,
      stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = o.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), o.timeoutMs) : undefined;
    child.on("error", (err) => {
      stderr += err.message;
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolveRun({ code, stdout, stderr });
    });
    if (o.input !== undefined) {
      // A client that exits before reading (connection refused) closes its stdin under us.
      child.stdin.on("error", () => undefined);
      child.stdin.end(o.input);
    }
  });
}

/** `run` inside a network namespace. */
const inNs = (ns, cmd, o) => run("ip", ["netns", "exec", ns, ...cmd], o);

/** A command that must succeed; its stdout. */
async function must(cmd, args, o) {
  const r = await run(cmd, args, o);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}
const mustIn = (ns, cmd, o) => must("ip", ["netns", "exec", ns, ...cmd], o);

/** A quick synchronous command (setup and cleanup); throws with its stderr. */
function sh(cmd, args, o = {}) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...o });
  } catch (err) {
    throw new Error(`${cmd} ${args.join(" ")}: ${(err.stderr || err.message).trim()}`, { cause: err });
  }
}

/** The run's tag, in the environment of every long-lived process (and so of its children). */
const RUN_ENV = "WEFT_DEMO_RUN";
let runTag = "";

/**
 * A long-lived process (weftd, etcd, a pod's server), in its own process group so the terminal's Ctrl-C
 * reaches the demo alone (cleanup ends the process, in order) and --keep can leave it running. It carries
 * the run's tag in its environment, so cleanup finds it even where its namespace is gone.
 */
function daemon(ns, cmd, logFile) {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn("ip", ["netns", "exec", ns, ...cmd], {
      stdio: ["ignore", fd, fd],
      detached: true,
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", [RUN_ENV]: runTag },
    });
    child.on("error", () => undefined);
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Where weft's portmap records what each ADD installed (plugins/portmap/record.ts). */
const PORTMAP_RECORDS = "/run/weft/portmap";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `probe` resolves truthy, checking every `everyMs`; throws after `ms`, or when aborted. */
async function until(what, probe, ms, everyMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    if (aborted) throw new Aborted("interrupted");
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${secs(ms)} waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `fn` over `items` with at most `limit` at a time, in order of the results. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** An HTTP GET inside a namespace with socat (host-deps installs it; curl may be missing): status, body. */
async function httpGet(ns, host, port, path) {
  const r = await inNs(ns, ["socat", "-T", "2", "-", `TCP:${host}:${port},connect-timeout=1`], {
    input: `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`,
    timeoutMs: 3000,
  });
  const m = /^HTTP\/1\.\d (\d+)/.exec(r.stdout);
  const body = r.stdout.split("\r\n\r\n").slice(1).join("\r\n\r\n").trim();
  return { status: m ? Number(m[1]) : 0, body };
}

/** CNI calls a node's weftd served (the sum of weftd_cni_calls_total on its /metrics). */
async function servedCalls(node) {
  const { body } = await httpGet(node.ns, "127.0.0.1", HEALTH_PORT, "/metrics");
  let sum = 0;
  for (const m of body.matchAll(/^weftd_cni_calls_total\{[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

// ---------------------------------------------------------------------------------------------------------
// The run's objects, all named from its tag.

const names = (tag) => ({
  dir: join(tmpdir(), `weft-demo-${tag}`),
  hub: `${tag}-hub`,
  node: (i) => `${tag}-node${i}`,
  pod: (i, letter) => `${tag}-node${i}-${letter}`,
});

/** The network namespaces of a run, pods first, then nodes, then the hub (the order they are removed in). */
function runNamespaces(tag) {
  const out = sh("ip", ["netns", "list"]);
  const ours = out
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => n?.startsWith(`${tag}-`));
  const rank = (n) => (n === `${tag}-hub` ? 2 : /-node\d+$/.test(n) ? 1 : 0);
  return ours.sort((a, b) => rank(a) - rank(b));
}

function pidsIn(ns) {
  try {
    return sh("ip", ["netns", "pids", ns]).split("\n").map(Number).filter(Boolean);
  } catch {
    return [];
  }
}

/** Whether a process still runs; a zombie (exited, not yet reaped by the demo's event loop) does not. */
/** Processes carrying the run's tag in their environment (see daemon()). */
function taggedPids(tag) {
  const want = `\0${RUN_ENV}=${tag}\0`;
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (`\0${readFileSync(`/proc/${entry}/environ`, "latin1")}\0`.includes(want)) out.push(Number(entry));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Removes everything of the run `tag`; idempotent, never throws, synchronous (it runs from a signal
 * handler too). Returns what it removed, one line per kind.
 */
function removeRun(tag) {
  const n = names(tag);
  const done = [];
  const namespaces = runNamespaces(tag);
  // Processes first: a namespace a process still holds outlives `ip netns del`.
  const pids = [...new Set([...namespaces.flatMap(pidsIn), ...taggedPids(tag)])].filter(
    (p) => p !== process.pid,
  );
  for (const p of pids) {
    try {
      process.kill(p, "SIGTERM");
    } catch {
      // gone already
    }
  }
  const end = Date.now() + 2000;
  while (pids.some(alive) && Date.now() < end) sh("sleep", ["0.05"]);
  for (const p of pids.filter(alive)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone already
    }
  }
  if (pids.length)
    done.push(`${pids.length} processes of the run (weftd and its ip monitor, etcd, the pod's server)`);
  for (const ns of namespaces) {
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {
      // gone already
    }
  }
  if (namespaces.length)
    done.push(`${namespaces.length} network namespaces with their links, routes and iptables rules`);
  // Nothing of the run lives in the host's namespace; a rule carrying the tag there would be a bug, and
  // goes all the same.
  try {
    const stray = sh("iptables-save", ["-t", "nat"])
      .split("\n")
      .filter((l) => l.startsWith("-A ") && l.includes(tag));
    for (const rule of stray) {
      const words = rule.slice(3).match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
      sh("iptables", ["-t", "nat", "-D", ...words.map((w) => (w.startsWith('"') ? JSON.parse(w) : w))]);
    }
    if (stray.length) done.push(`${stray.length} rules in the host's nat table (unexpected)`);
  } catch {
    // no iptables here: nothing of ours there either
  }
  // portmap's records of what each ADD installed (/run/weft/portmap/<network>/<container>:<ifname>, on
  // the host's /run): a pod removed without its DEL (Ctrl-C, --cleanup) leaves its record.
  let records = 0;
  try {
    for (const net of readdirSync(PORTMAP_RECORDS)) {
      for (const f of readdirSync(join(PORTMAP_RECORDS, net))) {
        if (!f.startsWith(`${tag}-`)) continue;
        rmSync(join(PORTMAP_RECORDS, net, f), { force: true });
        records++;
      }
    }
  } catch {
    // no records at all
  }
  if (records) done.push(`${records} portmap records in ${PORTMAP_RECORDS}`);
  if (existsSync(n.dir)) {
    rmSync(n.dir, { recursive: true, force: true });
    done.push(n.dir);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------------------
// Steps

/** The hub (the underlay bridge) and N nodes on it, each with eth0 = <UNDERLAY>.<i>, routing on. */
function makeUnderlay(n, count) {
  sh("ip", ["netns", "add", n.hub]);
  sh("ip", ["-n", n.hub, "link", "set", "lo", "up"]);
  sh("ip", ["-n", n.hub, "link", "add", "br0", "type", "bridge"]);
  sh("ip", ["-n", n.hub, "addr", "add", `${HUB_IP}/24`, "dev", "br0"]);
  sh("ip", ["-n", n.hub, "link", "set", "br0", "up"]);
  const nodes = [];
  for (let i = 1; i <= count; i++) {
    const ns = n.node(i);
    sh("ip", ["netns", "add", ns]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    sh("ip", ["-n", n.hub, "link", "add", `p${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh("ip", ["-n", n.hub, "link", "set", `p${i}`, "master", "br0", "up"]);
    sh("ip", ["-n", ns, "addr", "add", `${UNDERLAY}.${i}/24`, "dev", "eth0"]);
    sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    sh("ip", ["-n", ns, "route", "add", "default", "via", HUB_IP]);
    // A node routes its pods' traffic (kube-proxy or the node's setup turns this on).
    sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const dir = join(n.dir, `node${i}`);
    mkdirSync(dir);
    nodes.push({
      i,
      name: `node${i}`,
      ns,
      ip: `${UNDERLAY}.${i}`,
      dir,
      binDir: join(dir, "bin"),
      confDir: join(dir, "net.d"),
      subnetFile: join(dir, "subnet.env"),
      cniSocket: join(dir, "cni.sock"),
      pods: [],
    });
  }
  return nodes;
}

/** The kube-flannel list with this node's private paths (see the header). */
function nodeConflist(node) {
  const list = JSON.parse(readFileSync(join(root, "conflists", "10-flannel.conflist"), "utf8"));
  const flannel = list.plugins.find((p) => p.type === "flannel");
  flannel.subnetFile = node.subnetFile;
  flannel.dataDir = join(node.dir, "flannel");
  flannel.ipam = { dataDir: join(node.dir, "ipam") };
  const file = join(node.dir, "10-flannel.conflist");
  writeFileSync(file, `${JSON.stringify(list, null, 2)}\n`);
  return file;
}

/** `weft install` into the node's own dirs, as the DaemonSet's init container runs it; the lines it printed. */
async function installNode(node, conflist) {
  const weft = join(distBin, "weft");
  const r = await inNs(node.ns, [
    weft,
    "install",
    `--bin-dir=${node.binDir}`,
    `--conf-dir=${node.confDir}`,
    `--conflist=${conflist}`,
    `--from=${weft}`,
  ]);
  if (r.code !== 0)
    throw new Error(`weft install on ${node.name} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim().split("\n").filter(Boolean);
}

/** A throwaway etcd in the hub, on <UNDERLAY>.254:2379 where every node reaches it over eth0. */
async function startEtcd(n, netConf) {
  const dir = join(n.dir, "etcd");
  mkdirSync(dir);
  const url = `http://${HUB_IP}:2379`;
  const child = daemon(
    n.hub,
    [
      "etcd",
      "--name=demo",
      `--data-dir=${join(dir, "data")}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      "--listen-peer-urls=http://127.0.0.1:2380",
      "--initial-advertise-peer-urls=http://127.0.0.1:2380",
      "--initial-cluster=demo=http://127.0.0.1:2380",
      "--logger=zap",
      "--log-level=warn",
    ],
    join(dir, "etcd.log"),
  );
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const etcdctl = (args) =>
    inNs(n.hub, ["etcdctl", `--endpoints=${url}`, "--dial-timeout=1s", "--command-timeout=2s", ...args], {
      env: { ...process.env, ETCDCTL_API: "3" },
      timeoutMs: 5000,
    });
  await until(
    "etcd to answer",
    async () => {
      if (exited) throw new Error(`etcd exited at start:\n${readFileSync(join(dir, "etcd.log"), "utf8")}`);
      return (await etcdctl(["get", "/demo-probe"])).code === 0;
    },
    20_000,
  );
  // flannel's layout: the network config in <prefix>/config, read by every weftd.
  const put = await etcdctl(["put", "/coreos.com/network/config", JSON.stringify(netConf)]);
  if (put.code !== 0) throw new Error(`etcdctl put: ${put.stderr}`);
  return { url, etcdctl };
}

function storeArgs(store) {
  return store.kind === "file"
    ? ["--store=file", `--store-dir=${store.dir}`]
    : ["--store=etcd", `--etcd-endpoints=${store.url}`];
}

function startWeftd(node, store) {
  const args = [
    join(distBin, "weftd"),
    ...storeArgs(store),
    ...(store.netConfFile ? [`--net-config-path=${store.netConfFile}`] : []),
    `--subnet-file=${node.subnetFile}`,
    "--iface=eth0",
    "--ip-masq",
    "--healthz-ip=127.0.0.1",
    `--healthz-port=${HEALTH_PORT}`,
    // Each node's weftd serves its own plugins' calls (the resident fast path) on a socket in its dir;
    // the host's default /run/weft/cni.sock belongs to the host.
    `--cni-socket=${node.cniSocket}`,
  ];
  node.log = join(node.dir, "weftd.log");
  node.started = performance.now();
  node.weftd = daemon(node.ns, args, node.log);
  node.weftd.on("exit", (code) => {
    node.exitCode = code ?? -1;
  });
}

async function waitReady(node) {
  await until(
    `${node.name}'s /readyz`,
    async () => {
      if (node.exitCode !== undefined) {
        const log = existsSync(node.log) ? readFileSync(node.log, "utf8") : "";
        throw new Error(`weftd on ${node.name} exited with ${node.exitCode}:\n${indent(log)}`);
      }
      return (await httpGet(node.ns, "127.0.0.1", HEALTH_PORT, "/readyz")).status === 200;
    },
    30_000,
    50,
  );
  node.readyMs = performance.now() - node.started;
}

function parseEnv(text) {
  return Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** The node as weftd left it: subnet.env, the backend's device and the routes weftd made (proto 87). */
async function describeNode(node, backend) {
  const env = parseEnv(readFileSync(node.subnetFile, "utf8"));
  const [gw, len] = env.FLANNEL_SUBNET.split("/");
  node.subnet = `${gw.replace(/\.1$/, ".0")}/${len}`;
  node.mtu = env.FLANNEL_MTU;
  let device = "routes via the other nodes' eth0 addresses";
  if (backend === "vxlan") {
    const [link] = JSON.parse(await mustIn(node.ns, ["ip", "-d", "-j", "link", "show", "flannel.1"]));
    const v = link?.linkinfo?.info_data ?? {};
    device = `flannel.1 (VNI ${v.id}, VTEP ${link?.address}, port ${v.port})`;
  }
  const routes = JSON.parse(await mustIn(node.ns, ["ip", "-4", "-j", "route", "show", "proto", "87"]));
  node.routes = routes.map(
    (r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags?.includes("onlink") ? " onlink" : ""}`,
  );
  node.device = device;
}

function cniEnv(node, pod) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("CNI_") || k === "CAP_ARGS") delete env[k];
  return {
    ...env,
    NETCONFPATH: node.confDir,
    CNI_PATH: node.binDir,
    WEFT_CNI_SOCKET: node.cniSocket,
    CNI_CACHE_DIR: join(node.dir, "cni-cache"),
    CNI_CONTAINERID: pod.ns,
    ...(pod.hostPort ? { CAP_ARGS: JSON.stringify({ portMappings: [pod.hostPort] }) } : {}),
  };
}

/** A pod: a namespace, ADDed through libcni by the node's runtime (the client runs inside the node). */
async function addPod(node, pod, cnitool) {
  sh("ip", ["netns", "add", pod.ns]);
  sh("ip", ["-n", pod.ns, "link", "set", "lo", "up"]);
  const r = await inNs(node.ns, [cnitool, "add", "cbr0", `/var/run/netns/${pod.ns}`], {
    env: cniEnv(node, pod),
    timeoutMs: 20_000,
  });
  if (r.code !== 0) throw new Error(`ADD ${pod.label} failed: ${(r.stdout + r.stderr).trim()}`);
  const result = JSON.parse(r.stdout);
  pod.cidr = result.ips[0].address;
  pod.ip = pod.cidr.split("/")[0];
  pod.gateway = result.ips[0].gateway;
  pod.veth = result.interfaces?.find((i) => !i.sandbox && i.name !== "cni0")?.name ?? "?";
  pod.added = true;
}

async function delPod(node, pod, cnitool) {
  const r = await inNs(node.ns, [cnitool, "del", "cbr0", `/var/run/netns/${pod.ns}`], {
    env: cniEnv(node, pod),
    timeoutMs: 20_000,
  });
  if (r.code !== 0) throw new Error(`DEL ${pod.label} failed: ${(r.stdout + r.stderr).trim()}`);
  pod.added = false;
}

/** One ping, up to 3 tries (a fresh neighbour entry can cost the first); the round trip in ms or undefined. */
async function ping(from, to) {
  for (let i = 0; i < 3; i++) {
    const r = await inNs(from.ns, ["ping", "-n", "-c", "1", "-W", "1", to.ip], { timeoutMs: 3000 });
    const m = /time=([\d.]+) ms/.exec(r.stdout);
    if (r.code === 0 && m) return Number(m[1]);
  }
  return undefined;
}

function matrix(pods, results) {
  const w = Math.max(6, ...pods.map((p) => p.short.length)) + 1;
  const head = `${"".padEnd(w)}${pods.map((p) => p.short.padStart(w)).join("")}`;
  const rows = pods.map((a, i) => {
    const cells = pods.map((_b, j) => {
      if (i === j) return "-".padStart(w);
      const ms = results.get(`${i}>${j}`);
      return ms === undefined ? paint("31", "FAIL".padStart(w)) : ms.toFixed(2).padStart(w);
    });
    return `${a.short.padEnd(w)}${cells.join("")}`;
  });
  return [head, ...rows].join("\n");
}

/** The pod's server: answers one line on CONTAINER_PORT, for the hostPort check. */
async function startServer(pod, dir) {
  daemon(
    pod.ns,
    ["socat", `TCP-LISTEN:${CONTAINER_PORT},fork,reuseaddr`, `SYSTEM:echo hello from ${pod.label}`],
    join(dir, `server-${pod.short}.log`),
  );
  await until(
    `${pod.label}'s server`,
    async () => (await inNs(pod.ns, ["ss", "-Hltn", `sport = :${CONTAINER_PORT}`])).stdout.includes("LISTEN"),
    5000,
    50,
  );
}

async function reach(ns, host, port) {
  const r = await inNs(ns, ["socat", "-T", "2", "-", `TCP:${host}:${port},connect-timeout=2`], {
    input: "",
    timeoutMs: 5000,
  });
  return r.stdout.trim() || (r.stderr.trim().split("\n").pop() ?? "no answer");
}

/** `weft doctor` on a node, with the node's dirs and store: its command line, exit status and output. */
async function doctor(node, store) {
  const args = [
    join(node.binDir, "weft"),
    "doctor",
    `--bin-dir=${node.binDir}`,
    `--conf-dir=${node.confDir}`,
    `--subnet-file=${node.subnetFile}`,
    `--healthz-url=http://127.0.0.1:${HEALTH_PORT}`,
    ...storeArgs(store),
  ];
  const r = await inNs(node.ns, args, { timeoutMs: 30_000 });
  return { code: r.code, out: (r.stdout + r.stderr).trim(), args };
}

// ---------------------------------------------------------------------------------------------------------
// Main

function parse() {
  let v;
  try {
    v = parseArgs({
      options: {
        backend: { type: "string", default: "vxlan" },
        nodes: { type: "string", default: "3" },
        store: { type: "string", default: "file" },
        keep: { type: "boolean", default: false },
        tag: { type: "string" },
        cleanup: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    usage(err.message);
  }
  if (v.help) {
    say(USAGE);
    process.exit(0);
  }
  const nodes = Number(v.nodes);
  if (!["vxlan", "host-gw"].includes(v.backend))
    usage(`--backend: unsupported value "${v.backend}"; allowed values: vxlan, host-gw`);
  if (!["file", "etcd"].includes(v.store))
    usage(`--store: unsupported value "${v.store}"; allowed values: file, etcd`);
  if (!Number.isInteger(nodes) || nodes < 2 || nodes > MAX_NODES)
    usage(`--nodes: invalid value "${v.nodes}"; allowed values: 2..${MAX_NODES}`);
  for (const t of [v.tag, v.cleanup])
    if (t !== undefined && !/^[a-z0-9]{2,10}$/.test(t)) usage(`invalid tag "${t}": 2..10 of [a-z0-9]`);
  return { ...v, nodes };
}

function usage(msg) {
  process.stderr.write(`demo: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function newTag() {
  for (;;) {
    const tag = `wd${Math.floor(Math.random() * 36 ** 4)
      .toString(36)
      .padStart(4, "0")}`;
    if (!existsSync(names(tag).dir) && runNamespaces(tag).length === 0) return tag;
  }
}

function prerequisites(o) {
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      "demo: run as root (it creates network namespaces, bridges, veths and iptables rules)\n",
    );
    process.exit(1);
  }
  const need = [
    "ip",
    "iptables-save",
    "socat",
    "ping",
    "ss",
    ...(o.store === "etcd" ? ["etcd", "etcdctl"] : []),
  ];
  const missing = need.filter((p) => {
    try {
      sh("sh", ["-c", `command -v ${p}`]);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) {
    process.stderr.write(
      `demo: missing ${missing.join(", ")}: run bash scripts/host-deps.sh (or npm run demo)\n`,
    );
    process.exit(1);
  }
  if (!existsSync(join(distBin, "weftd"))) {
    say(`building ${distBin} (npm run build) ...`);
    execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), "--out", distBin], {
      stdio: "inherit",
    });
  }
  return sh("bash", [join(root, "test", "tools", "cnitool", "build.sh"), cnitoolDir]).trim();
}

async function demo(o, tag, cnitool, state) {
  const n = names(tag);
  const netConf = { Network: NETWORK, Backend: { Type: o.backend } };
  const storeLabel = o.store === "etcd" ? "etcd in the underlay hub" : "the embedded file store";

  step(`Run ${tag}: ${o.nodes} nodes, ${o.backend} backend, ${storeLabel}`);
  mkdirSync(n.dir, { mode: 0o700 });
  say(`    work dir ${n.dir}; executables ${distBin}; libcni client ${cnitool}`);

  step(`Nodes: network namespaces on an underlay bridge (${UNDERLAY}.0/24 in ${n.hub})`);
  const nodes = makeUnderlay(n, o.nodes);
  state.nodes = nodes;
  for (const node of nodes) say(`    ${node.name}  ${node.ns}  eth0 ${node.ip}/24`);

  step("weft install into each node's own CNI dirs (what the init container runs)");
  const installs = await Promise.all(nodes.map((node) => installNode(node, nodeConflist(node))));
  say(`    ${nodes[0].name}:`);
  say(indent(installs[0].join("\n"), "      "));
  for (const [k, node] of nodes.entries())
    if (k > 0) say(`    ${node.name}: the same (${installs[k].length} lines)`);

  const store =
    o.store === "etcd"
      ? { kind: "etcd", ...(await startEtcd(n, netConf)) }
      : { kind: "file", dir: join(n.dir, "leases"), netConfFile: join(n.dir, "net-conf.json") };
  if (store.kind === "file") {
    mkdirSync(store.dir);
    writeFileSync(store.netConfFile, `${JSON.stringify(netConf)}\n`);
  }
  step(
    store.kind === "file"
      ? `weftd on each node: file store ${store.dir}, net-conf ${JSON.stringify(netConf)}`
      : `weftd on each node: etcd at ${store.url}, /coreos.com/network/config = ${JSON.stringify(netConf)}`,
  );
  for (const node of nodes) startWeftd(node, store);
  await Promise.all(
    nodes.map(async (node) => {
      await waitReady(node);
      await describeNode(node, o.backend);
      say(`    ${node.name} ready in ${secs(node.readyMs)}: subnet ${node.subnet}, MTU ${node.mtu}`);
    }),
  );
  // A node is ready once it has its own lease; the others' leases reach it a moment later (the store's
  // watch). Show the routes once every node routes to every other (a few hundred ms at most).
  for (let waited = 0; waited < 10_000; waited += 100) {
    if (nodes.every((n) => n.routes.length >= nodes.length - 1)) break;
    await sleep(100);
    await Promise.all(nodes.map((node) => describeNode(node, o.backend)));
  }
  step("Nodes, their subnets and the backend");
  for (const node of nodes) {
    say(`    ${paint("1", node.name)}  ${node.ip}  subnet ${node.subnet}  ${o.backend}: ${node.device}`);
    for (const r of node.routes) say(`        ${r}`);
  }

  step("Pods: two per node, ADDed through libcni with the node's installed conflist and plugins");
  for (const node of nodes) {
    for (const letter of ["a", "b"]) {
      const ns = n.pod(node.i, letter);
      node.pods.push({ ns, node, short: `n${node.i}${letter}`, label: `${node.name}/${letter}` });
    }
  }
  const published = nodes[0].pods[0];
  published.hostPort = { hostPort: HOST_PORT, containerPort: CONTAINER_PORT, protocol: "tcp" };
  await Promise.all(
    nodes.map(async (node) => {
      for (const pod of node.pods) await addPod(node, pod, cnitool);
    }),
  );
  const pods = nodes.flatMap((node) => node.pods);
  for (const pod of pods)
    say(
      `    ${pod.label.padEnd(9)} ${pod.cidr.padEnd(16)} gw ${pod.gateway.padEnd(12)} host veth ${pod.veth}${
        pod.hostPort ? `  hostPort ${HOST_PORT} -> ${CONTAINER_PORT}` : ""
      }`,
    );
  // The plugins the runtime executed were thin clients: each node's weftd ran the calls (its /metrics).
  const served = await Promise.all(nodes.map((node) => servedCalls(node)));
  say(
    `    the plugin calls were served by each node's weftd on its CNI socket: ${nodes
      .map((node, i) => `${node.name} ${served[i]}`)
      .join(", ")} (weftd_cni_calls_total)`,
  );

  const pairs = pods.flatMap((a, i) => pods.map((b, j) => [a, b, i, j]).filter(([, , , j]) => j !== i));
  step(`Pod-to-pod connectivity: ${pairs.length} pairs, ping -c1, round trip in ms (row -> column)`);
  const results = new Map();
  const pingStart = performance.now();
  await pool(pairs, 32, async ([a, b, i, j]) => {
    const ms = await ping(a, b);
    if (ms !== undefined) results.set(`${i}>${j}`, ms);
  });
  say(indent(matrix(pods, results)));
  state.pairs = pairs.length;
  state.connected = results.size;
  const lost = pairs
    .filter(([, , i, j]) => !results.has(`${i}>${j}`))
    .map(([a, b]) => `${a.label} -> ${b.label}`);
  say(
    `    ${lost.length === 0 ? OK : BAD} ${results.size} of ${pairs.length} pairs answered in ${secs(
      performance.now() - pingStart,
    )}${lost.length ? `; no answer: ${lost.join(", ")}` : ""}`,
  );

  const other = nodes[1];
  step(
    `hostPort: ${nodes[0].name}:${HOST_PORT} -> ${published.label}:${CONTAINER_PORT} (portmap), from ${other.name}`,
  );
  await startServer(published, n.dir);
  const want = `hello from ${published.label}`;
  const checks = [
    [`${other.name} -> ${nodes[0].ip}:${HOST_PORT}`, other.ns],
    [`${other.pods[0].label} (pod) -> ${nodes[0].ip}:${HOST_PORT}`, other.pods[0].ns],
  ];
  state.hostPort = true;
  for (const [what, ns] of checks) {
    const got = await reach(ns, nodes[0].ip, HOST_PORT);
    const ok = got === want;
    if (!ok) state.hostPort = false;
    say(`    ${ok ? OK : BAD} hostPort ${what}: ${got}`);
  }

  step(`weft doctor on ${nodes[0].name}`);
  const d = await doctor(nodes[0], store);
  say(`    $ ip netns exec ${nodes[0].ns} ${d.args.slice(0, 4).join(" ")} \\`);
  say(`        ${d.args.slice(4).join(" ")}`);
  say(indent(d.out, "      "));
  state.doctor = d.code === 0 ? "ok" : `exit status ${d.code}`;
  say(`    ${d.code === 0 ? OK : BAD} doctor: ${d.code === 0 ? "no problem" : `exit status ${d.code}`}`);
  return { nodes, store };
}

function printKeep(tag, state, store) {
  const n = names(tag);
  const [first] = state.nodes;
  const last = state.nodes.at(-1);
  const cnitool = join(cnitoolDir, "cnitool");
  const extra = `${tag}-node1-c`;
  const lines = [
    `# the hub, the nodes, the pods (network namespaces)`,
    `ip netns list | grep ${tag}-`,
    `# node1: cni0, flannel.1 (vxlan), the pods' veths; the routes to the other nodes' subnets; the rules`,
    `ip -n ${first.ns} -br link; ip -n ${first.ns} route`,
    `ip netns exec ${first.ns} iptables-save -t nat | grep -E 'FLANNEL|HOSTPORT|CNI-DN'`,
    `# what weftd wrote and logged, and its health`,
    `cat ${first.subnetFile}; tail ${first.log}`,
    `ip netns exec ${first.ns} curl -s 127.0.0.1:${HEALTH_PORT}/readyz`,
    `# a pod on node1 pings one on ${last.name}; the hostPort from ${state.nodes[1].name}`,
    `ip netns exec ${first.pods[0].ns} ping -c1 ${last.pods.at(-1).ip}`,
    `ip netns exec ${state.nodes[1].ns} socat - TCP:${first.ip}:${HOST_PORT}`,
    `# diagnose node1 (--json for a machine; --fix for the safe repairs)`,
    `ip netns exec ${first.ns} ${first.binDir}/weft doctor --bin-dir=${first.binDir} --conf-dir=${first.confDir} \\`,
    `  --subnet-file=${first.subnetFile} --healthz-url=http://127.0.0.1:${HEALTH_PORT} ${storeArgs(store).join(" ")}`,
    `# one more pod on node1, as the runtime adds it (DEL the same way with "del")`,
    `ip netns add ${extra}`,
    `ip netns exec ${first.ns} env NETCONFPATH=${first.confDir} CNI_PATH=${first.binDir} \\`,
    `  CNI_CACHE_DIR=${join(first.dir, "cni-cache")} CNI_CONTAINERID=${extra} ${cnitool} add cbr0 /var/run/netns/${extra}`,
  ];
  step("Left running (--keep). Look around:");
  say(indent(lines.join("\n")));
  step("Clean up with:");
  say(`    node ${join(root, "scripts", "demo.mjs")} --cleanup ${tag}`);
  say(`    (it ends every process in the ${tag}-* namespaces, deletes them, and removes ${n.dir})`);
}

async function main() {
  const o = parse();
  if (o.cleanup) {
    if (process.getuid?.() !== 0) usage("--cleanup needs root");
    const done = removeRun(o.cleanup);
    say(
      done.length
        ? `demo: removed run ${o.cleanup}: ${done.join("; ")}`
        : `demo: nothing left of run ${o.cleanup}`,
    );
    return 0;
  }
  const cnitool = prerequisites(o);
  const tag = o.tag ?? newTag();
  if (o.tag && (existsSync(names(tag).dir) || runNamespaces(tag).length))
    usage(`tag ${tag} is in use: node scripts/demo.mjs --cleanup ${tag}`);
  runTag = tag;
  const state = { nodes: [], pairs: 0, connected: 0 };
  let interrupted;
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    step("Clean up");
    const done = removeRun(tag);
    say(indent(done.length ? done.map((d) => `removed ${d}`).join("\n") : "nothing to remove"));
  };
  const onSignal = (signal) => {
    if (interrupted) return; // a second Ctrl-C: cleanup is already on its way
    interrupted = signal;
    aborted = true;
    say(`\n${paint("33", `demo: ${signal}: stopping and cleaning up`)}`);
    for (const c of running) c.kill("SIGKILL");
    // The main flow unwinds within a command's time; if it does not, clean up from here.
    setTimeout(() => {
      cleanup();
      finish(state, `interrupted by ${signal}, everything removed`, 130, o);
    }, 5000).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  // A bug of the demo's own must not leave the run behind either.
  const onCrash = (err) => {
    process.stderr.write(`demo: ${err?.stack ?? err}\n`);
    cleanup();
    finish(state, `the demo crashed: ${err?.message ?? err}`, 1, o);
  };
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);

  let failure;
  let store;
  try {
    ({ store } = await demo(o, tag, cnitool, state));
    if (!o.keep) {
      step("The runtime DELs every pod through libcni");
      const pods = state.nodes.flatMap((node) => node.pods);
      await Promise.all(
        state.nodes.map(async (node) => {
          for (const pod of node.pods) await delPod(node, pod, cnitool);
        }),
      );
      const left = state.nodes.flatMap((node) => {
        const ipam = join(node.dir, "ipam", "cbr0");
        const saved = join(node.dir, "flannel");
        return [
          ...(existsSync(ipam) ? readdirSync(ipam).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : []),
          ...(existsSync(saved) ? readdirSync(saved) : []),
        ].map((f) => `${node.name}:${f}`);
      });
      say(
        `    ${left.length ? BAD : OK} ${pods.length} pods deleted; reservations and saved configs left: ${
          left.length ? left.join(", ") : "none"
        }`,
      );
      if (left.length) failure = `DEL left ${left.join(", ")}`;
    }
  } catch (err) {
    if (!(err instanceof Aborted) && !interrupted) {
      failure = err.message;
      say(`\n${paint("31", "demo: error:")} ${err.message}`);
    }
  }
  if (interrupted) {
    cleanup();
    return finish(state, `interrupted by ${interrupted}, everything removed`, 130, o);
  }
  if (o.keep && state.nodes.length) {
    const how = store ?? { kind: o.store, dir: join(names(tag).dir, "leases"), url: `http://${HUB_IP}:2379` };
    try {
      printKeep(tag, state, how);
    } catch {
      // a run that failed early: only the cleanup command makes sense
      say(`\n    clean up with: node ${join(root, "scripts", "demo.mjs")} --cleanup ${tag}`);
    }
  } else cleanup();
  if (!failure && state.connected < state.pairs)
    failure = `${state.pairs - state.connected} of ${state.pairs} pairs got no answer`;
  if (!failure && !state.hostPort) failure = "the hostPort check failed";
  if (!failure && state.doctor !== "ok") failure = `weft doctor: ${state.doctor}`;
  return finish(state, failure, failure ? 1 : 0, o);
}

function finish(state, failure, status, o) {
  const pods = state.nodes.flatMap((node) => node.pods).filter((p) => p.cidr).length;
  const what = `${state.nodes.length} nodes, ${pods} pods, ${o.backend}, ${o.store} store`;
  const took = secs(performance.now() - t0);
  say();
  if (failure) say(paint("31", `demo: FAILED: ${failure} (${what}, ${took})`));
  else say(paint("32", `demo: all ${state.pairs} pairs connected (${what}, ${took})`));
  process.exit(status);
}

main().then(
  (status) => process.exit(status ?? 0),
  (err) => {
    process.stderr.write(`demo: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
