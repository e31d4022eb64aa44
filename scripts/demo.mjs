#!/usr/bin/env node
// `npm run demo`: weft's pod path on this one machine, the way a container runtime drives it.
//   - write a subnet.env like flanneld's for this node's lease;
//   - create two pods (network namespaces);
//   - ADD them through libcni (the cnitool client) with the kube-flannel conflist and weft's executables
//     (dist/bin): flannel -> bridge -> host-local, then portmap;
//   - show their addresses, ping pod to pod and pod to gateway;
//   - reach pod A through its hostPort from the node, from 127.0.0.1, from pod B and from itself;
//   - DEL them, show that nothing is left, and clean up.
// Everything is private to the run: temp dirs, a unique bridge and a free 10.N.0.0/16. Needs root.
//
//   node scripts/demo.mjs [--rebuild]     (builds dist/bin first when it is missing; WEFT_BIN_DIR overrides)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = resolve(process.env.WEFT_BIN_DIR ?? join(root, "dist", "bin"));
const tag = (process.pid % 46656).toString(36);
const color = process.stdout.isTTY ? (c, s) => `\x1b[${c}m${s}\x1b[0m` : (_c, s) => s;

function step(title) {
  console.log(`\n${color("1;36", "==>")} ${color("1", title)}`);
}
function show(text) {
  for (const line of text.trimEnd().split("\n")) console.log(`    ${line}`);
}
function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...opts });
}

if (process.getuid?.() !== 0) {
  console.error("demo: run as root (it creates network namespaces, a bridge and veths)");
  process.exit(1);
}

step("Host dependencies and executables");
execFileSync("bash", [join(root, "scripts", "host-deps.sh")], { stdio: "inherit" });
if (process.argv.includes("--rebuild") || !existsSync(join(binDir, "flannel"))) {
  execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), "--out", binDir], { stdio: "inherit" });
}
const cnitool = sh("bash", [
  join(root, "test", "tools", "cnitool", "build.sh"),
  join(root, "build", "tools", "cnitool"),
]).trim();
show(`weft executables: ${binDir}\nlibcni client:    ${cnitool}`);

const work = mkdtempSync(join(tmpdir(), "weft-demo-"));
const bridge = `weftdemo${tag}`;
const netName = `weft-demo-${tag}`;
const pods = [`weft-demo-a-${tag}`, `weft-demo-b-${tag}`];
const created = [];
const servers = [];
let dnatChain = "";
let failed = false;

try {
  // A /16 nothing on this host routes yet, so the demo cannot collide with a real network.
  const routes = sh("ip", ["-4", "route", "show", "table", "all"]);
  const free = [...Array(150).keys()].map((i) => 100 + i).filter((n) => !routes.includes(`10.${n}.`));
  if (free.length === 0) throw new Error("no free 10.N.0.0/16 on this host");
  const n = free[Math.floor(Math.random() * free.length)];
  const network = `10.${n}.0.0/16`;
  const gateway = `10.${n}.7.1`;

  step("flanneld's view of this node: subnet.env");
  const subnetEnv = join(work, "subnet.env");
  writeFileSync(
    subnetEnv,
    `FLANNEL_NETWORK=${network}\nFLANNEL_SUBNET=${gateway}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  );
  show(readFileSync(subnetEnv, "utf8"));

  step("The kube-flannel conflist (conflists/10-flannel.conflist), pointed at the demo's files");
  const list = JSON.parse(readFileSync(join(root, "conflists", "10-flannel.conflist"), "utf8"));
  list.name = netName;
  const flannel = list.plugins[0];
  flannel.subnetFile = subnetEnv;
  flannel.dataDir = join(work, "flannel");
  flannel.delegate = { ...flannel.delegate, bridge };
  flannel.ipam = { dataDir: join(work, "ipam") };
  const confDir = join(work, "net.d");
  mkdirSync(confDir);
  writeFileSync(join(confDir, "10-flannel.conflist"), JSON.stringify(list, null, 2));
  show(JSON.stringify(list, null, 2));

  // CNI_PATH: the four names, all links to the one weft executable, as `weft install` lays them out.
  const cniPath = join(work, "bin");
  mkdirSync(cniPath);
  for (const name of ["flannel", "bridge", "host-local", "portmap"])
    symlinkSync(join(binDir, name), join(cniPath, name));
  const env = { ...process.env, NETCONFPATH: confDir, CNI_PATH: cniPath, CNI_CACHE_DIR: join(work, "cache") };
  // Pod A publishes a hostPort, as a pod spec's `ports[].hostPort` makes kubelet ask through CAP_ARGS.
  const hostPort = 30000 + Math.floor(Math.random() * 2000);
  const capArgs = { [pods[0]]: { portMappings: [{ hostPort, containerPort: 8080, protocol: "tcp" }] } };
  const libcni = (verb, pod) => {
    const r = spawnSync(cnitool, [verb, netName, `/var/run/netns/${pod}`], {
      env: {
        ...env,
        CNI_CONTAINERID: pod,
        ...(capArgs[pod] ? { CAP_ARGS: JSON.stringify(capArgs[pod]) } : {}),
      },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`cnitool ${verb} ${pod} failed:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  step("Two pods (network namespaces)");
  for (const pod of pods) {
    sh("ip", ["netns", "add", pod]);
    created.push(pod);
    sh("ip", ["-n", pod, "link", "set", "lo", "up"]);
  }
  show(pods.join("\n"));

  step("ADD both pods through libcni");
  const addrs = {};
  for (const pod of pods) {
    const result = JSON.parse(libcni("add", pod));
    addrs[pod] = result.ips[0].address.split("/")[0];
    console.log(
      `    ${color("1", pod)}: ${result.ips[0].address} via ${result.ips[0].gateway}, host veth ${result.interfaces[1].name}`,
    );
  }
  step(`Inside ${pods[0]}`);
  show(sh("ip", ["-n", pods[0], "-br", "addr", "show", "dev", "eth0"]) + sh("ip", ["-n", pods[0], "route"]));
  step(`The bridge ${bridge} on the host`);
  show(
    sh("ip", ["-br", "addr", "show", "dev", bridge]) + sh("ip", ["-br", "link", "show", "master", bridge]),
  );

  step("Traffic");
  const ping = (pod, to, what) => {
    const r = spawnSync("ip", ["netns", "exec", pod, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", to], {
      encoding: "utf8",
    });
    const summary = r.stdout.split("\n").find((l) => l.includes("packets transmitted")) ?? r.stderr.trim();
    console.log(`    ${r.status === 0 ? color("32", "ok  ") : color("31", "FAIL")} ${what}: ${summary}`);
    if (r.status !== 0) failed = true;
  };
  ping(pods[0], addrs[pods[1]], `${pods[0]} -> ${pods[1]} (${addrs[pods[1]]})`);
  ping(pods[1], addrs[pods[0]], `${pods[1]} -> ${pods[0]} (${addrs[pods[0]]})`);
  ping(pods[0], gateway, `${pods[0]} -> gateway (${gateway})`);

  step(`hostPort ${hostPort} -> ${pods[0]}:8080 (portmap)`);
  const server = spawn(
    "ip",
    [
      "netns",
      "exec",
      pods[0],
      "socat",
      "TCP-LISTEN:8080,fork,reuseaddr",
      `SYSTEM:echo hello from ${pods[0]}`,
    ],
    { stdio: "ignore" },
  );
  servers.push(server);
  sh("sleep", ["0.3"]);
  const fetch = (netns, host, what, expectAnswer = true) => {
    const cmd = ["socat", "-T", "2", "-", `TCP:${host}:${hostPort},connect-timeout=2`];
    const r = spawnSync(netns ? "ip" : cmd[0], netns ? ["netns", "exec", netns, ...cmd] : cmd.slice(1), {
      encoding: "utf8",
      input: "",
    });
    const answer = r.stdout.trim();
    const ok = expectAnswer ? answer === `hello from ${pods[0]}` : answer === "";
    console.log(`    ${ok ? color("32", "ok  ") : color("31", "FAIL")} ${what}: ${answer || "no answer"}`);
    if (!ok) failed = true;
  };
  fetch(undefined, gateway, `node -> ${gateway}:${hostPort}`);
  fetch(undefined, "127.0.0.1", `node -> 127.0.0.1:${hostPort}`);
  fetch(pods[1], gateway, `${pods[1]} -> ${gateway}:${hostPort}`);
  fetch(pods[0], gateway, `${pods[0]} -> itself through ${gateway}:${hostPort} (hairpin)`);
  const nat = sh("iptables-save", ["-t", "nat"]).split("\n");
  dnatChain = nat.find((l) => l.includes(netName))?.match(/-j (CNI-DN-\w+)/)?.[1] ?? "";
  show(nat.filter((l) => l.includes(netName) || (dnatChain && l.startsWith(`-A ${dnatChain} `))).join("\n"));

  step("DEL both pods");
  for (const pod of pods) libcni("del", pod);
  fetch(undefined, gateway, `node -> ${gateway}:${hostPort} after DEL`, false);
  const left = {
    "saved flannel configs": readdirSync(join(work, "flannel")),
    "reserved addresses": readdirSync(join(work, "ipam", netName)).filter((f) => /^[0-9a-f.:]+$/.test(f)),
    "portmap rules": sh("iptables-save", ["-t", "nat"])
      .split("\n")
      .filter((l) => l.includes(netName) || (dnatChain && l.includes(dnatChain))),
    "bridge ports": JSON.parse(sh("ip", ["-j", "link", "show", "master", bridge]) || "[]").map(
      (l) => l.ifname,
    ),
  };
  for (const [what, items] of Object.entries(left)) {
    console.log(
      `    ${items.length === 0 ? color("32", "ok  ") : color("31", "LEFT")} ${what}: ${items.length === 0 ? "none" : items.join(", ")}`,
    );
    if (items.length > 0) failed = true;
  }
} catch (err) {
  failed = true;
  console.error(`\n${color("31", "demo failed:")} ${err.message}`);
} finally {
  step("Clean up");
  for (const server of servers) server.kill();
  for (const pod of created) spawnSync("ip", ["netns", "del", pod]);
  spawnSync("ip", ["link", "del", bridge], { stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
  show(`removed ${created.join(", ") || "no pods"}, bridge ${bridge}, ${work}`);
}
console.log(failed ? color("31", "\ndemo: FAILED") : color("32", "\ndemo: all good"));
process.exit(failed ? 1 : 0);
