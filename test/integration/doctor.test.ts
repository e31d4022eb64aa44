/**
 * `weft doctor` on a simulated node (issue 10's "must show"): two nodes on an underlay with the packaged
 * weftd on a file store and pods through libcni (test/helpers/cluster.ts); doctor runs as an operator
 * runs it, `ip netns exec <node> weft doctor ...` with the node's own CNI dirs. On a healthy node it
 * reports no problem (exit 0, also as JSON); each problem provoked is reported with its fix (exit 1);
 * `--fix` releases leaks while a live pod keeps its address, reservation, saved config, hostPort chain
 * and connectivity. DOCTOR_DEBUG=1 prints every doctor run's output.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { Cluster, type ClusterNode, type ClusterPod, hubEtcd, pingOk } from "../helpers/cluster.js";
import { FORWARD_JUMP } from "../helpers/flannel-rules.js";
import { ipOf, type Pod, type PodPath, weftBinDir } from "../helpers/podpath.js";
import { until } from "../helpers/weftd.js";

const run = promisify(execFile);
const test = suite("weft doctor");

interface Line {
  status: string;
  id: string;
  text: string;
}
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  lines: Line[];
  ms: number;
}

let c: Cluster;
let n0: ClusterNode;
let n1: ClusterNode;
let pp: PodPath;
/** A pod on node 0 with a hostPort: it must keep everything through every --fix. */
let live: { pod: Pod; ip: string };
let remote: ClusterPod;
const sleepers: ChildProcess[] = [];

const weft = () => resolve(weftBinDir(), "weft");

function parse(stdout: string): Line[] {
  return stdout
    .split("\n")
    .map((l) => /^(ok|PROBLEM|FIXED|skipped)\s+([^:\s]+(?::[^:\s]+)?): (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ status: m[1]!, id: m[2]!, text: m[3]! }));
}

/** `weft doctor` inside the node with its dirs, weftd's store flags and health URL (unless `bare`). */
async function doctor(node: ClusterNode, args: string[] = [], o: { bare?: boolean } = {}): Promise<Outcome> {
  const p = await node.podPath();
  const cl = node.cluster;
  const base = o.bare
    ? []
    : [
        `--bin-dir=${p.cniPath}`,
        `--conf-dir=${p.confDir}`,
        ...cl.storeArgs(),
        `--healthz-url=http://127.0.0.1:${cl.healthPort}`,
      ];
  const t0 = Date.now();
  try {
    const r = await run("ip", ["netns", "exec", node.name, weft(), "doctor", ...base, ...args]);
    if (process.env.DOCTOR_DEBUG) console.log(`--- doctor ${args.join(" ")} (0)\n${r.stdout}${r.stderr}`);
    return { code: 0, stdout: r.stdout, stderr: r.stderr, lines: parse(r.stdout), ms: Date.now() - t0 };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    const stdout = e.stdout ?? "";
    if (process.env.DOCTOR_DEBUG)
      console.log(`--- doctor ${args.join(" ")} (${e.code})\n${stdout}${e.stderr}`);
    return { code: e.code ?? -1, stdout, stderr: e.stderr ?? "", lines: parse(stdout), ms: Date.now() - t0 };
  }
}

const problems = (o: Outcome) => o.lines.filter((l) => l.status === "PROBLEM");

/** The problem `id` is reported with a fix matching `fix`, its text matching `text`; exit 1. */
function reports(o: Outcome, id: string, text: RegExp, fix: RegExp = /./): Line {
  const l = o.lines.find((x) => x.id === id);
  assert.ok(l, `no line for ${id}:\n${o.stdout}${o.stderr}`);
  assert.is(l.status, "PROBLEM", `${id} should be a problem:\n${o.stdout}`);
  assert.match(l.text, text, l.text);
  const m = / -> fix: (.+)$/.exec(l.text);
  assert.ok(m, `${id} has no fix: ${l.text}`);
  assert.match(m[1]!, fix, m[1]!);
  assert.is(o.code, 1, o.stdout);
  return l;
}

function healthy(o: Outcome): void {
  assert.equal(problems(o), [], o.stdout + o.stderr);
  assert.is(o.code, 0, o.stdout + o.stderr);
}

const nsExec = (node: ClusterNode, cmd: string[]) => node.exec(cmd);

test.before(async () => {
  c = await Cluster.create({ nodes: 2, netConf: { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } } });
  await c.startAll();
  [n0, n1] = [c.nodes[0]!, c.nodes[1]!];
  pp = await n0.podPath();
  const pod = pp.pod("wdv");
  const r = pp.addOk(pod, {
    capArgs: { portMappings: [{ hostPort: 18081, containerPort: 80, protocol: "tcp" }] },
  }) as { ips: Array<{ address: string }> };
  live = { pod, ip: ipOf(r.ips[0]!.address) };
  remote = await n1.addPod();
});

test.after(async () => {
  for (const s of sleepers) s.kill("SIGKILL");
  await c?.cleanup();
});

test("a healthy node: no problem, exit 0, in text and JSON", async () => {
  const o = await doctor(n0);
  healthy(o);
  const statusOf = (id: string) => o.lines.find((l) => l.id === id)?.status;
  const subnet1 = n1.subnet();
  for (const id of [
    "conflist",
    "plugin:flannel",
    "plugin:bridge",
    "plugin:host-local",
    "plugin:portmap",
    "host-programs",
    "subnet-env",
    "weftd",
    "store",
    "lease",
    "cni0-address",
    "cni0-mtu",
    "ip-forward",
    "forward-policy",
    "masq-rules",
    `route:${subnet1}`,
    "vxlan-device",
    `vxlan-neigh:${subnet1}`,
    `vxlan-fdb:${subnet1}`,
    "leaks",
    "kube-ipvs0",
  ])
    assert.is(statusOf(id), "ok", `${id}:\n${o.stdout}`);
  assert.match(o.stdout, /weft doctor: no problem found/);

  const j = await doctor(n0, ["--json"]);
  assert.is(j.code, 0, j.stdout);
  const doc = JSON.parse(j.stdout) as {
    ok: boolean;
    problems: number;
    checks: Array<Record<string, unknown>>;
  };
  assert.is(doc.ok, true);
  assert.is(doc.problems, 0);
  assert.ok(doc.checks.length >= 20);
  for (const chk of doc.checks) {
    assert.type(chk.id, "string");
    assert.ok(["ok", "skipped"].includes(chk.status as string), JSON.stringify(chk));
    assert.type(chk.message, "string");
  }
});

test("bad usage: exit 2 with the usage", async () => {
  const o = await doctor(n0, ["--store=consul"]);
  assert.is(o.code, 2);
  assert.match(o.stderr, /--store: allowed values: file, etcd/);
  assert.match(o.stderr, /usage: weft doctor/);
});

test("subnet.env missing, garbled, or not weftd's lease", async () => {
  const file = n0.subnetFile;
  const good = n0.subnetEnvText()!;
  try {
    renameSync(file, `${file}.away`);
    reports(await doctor(n0), "subnet-env", /does not exist.*no such file or directory/, /start weftd/);
    renameSync(`${file}.away`, file);

    writeFileSync(file, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=garbage\n");
    reports(await doctor(n0), "subnet-env", /cannot be used/, /restart weftd/);

    reports(
      await doctor(n0, [`--subnet-file=${file}.other`]),
      "subnet-file",
      /the flannel plugin reads .*subnet\.env .* but weftd writes .*subnet\.env\.other/,
      /the same file/,
    );

    writeFileSync(file, good.replace(/^FLANNEL_SUBNET=.*$/m, "FLANNEL_SUBNET=10.244.250.1/24"));
    reports(await doctor(n0), "lease", /says 10\.244\.250\.0\/24.*but weftd's lease is/, /restart weftd/);
  } finally {
    if (existsSync(`${file}.away`)) renameSync(`${file}.away`, file);
    writeFileSync(file, good);
  }
  healthy(await doctor(n0));
});

test("cni0 with an address of another subnet and a wrong MTU", async () => {
  await nsExec(n0, ["ip", "addr", "add", "10.244.251.1/24", "dev", "cni0"]);
  await nsExec(n0, ["ip", "link", "set", "cni0", "mtu", "1400"]);
  try {
    const o = await doctor(n0);
    reports(
      o,
      "cni0-address",
      /has 10\.244\.251\.1\/24, not 10\.244\.\d+\.1\/24 .*already has an IP address different from/,
      /pods? attached.*ip link del cni0/,
    );
    reports(o, "cni0-mtu", /MTU is 1400, FLANNEL_MTU is 1450/, /ip link set cni0 mtu 1450/);
  } finally {
    await nsExec(n0, ["ip", "addr", "del", "10.244.251.1/24", "dev", "cni0"]);
    await nsExec(n0, ["ip", "link", "set", "cni0", "mtu", "1450"]);
  }
});

test("plugins: missing, not executable, not answering VERSION; a broken conflist first by name", async () => {
  const bin = pp.cniPath;
  rmSync(join(bin, "bridge"));
  rmSync(join(bin, "portmap"));
  writeFileSync(join(bin, "portmap"), "#!/bin/sh\n", { mode: 0o644 });
  rmSync(join(bin, "host-local"));
  writeFileSync(join(bin, "host-local"), "#!/bin/sh\necho truncated >&2; exit 126\n", { mode: 0o755 });
  const broken = join(pp.confDir, "00-broken.conflist");
  try {
    const o = await doctor(n0);
    reports(o, "plugin:bridge", /missing.*failed to find plugin "bridge"/, /weft install --bin-dir/);
    reports(o, "plugin:portmap", /not executable \(mode 0644\)/, /chmod 0755/);
    reports(
      o,
      "plugin:host-local",
      /does not answer CNI_COMMAND=VERSION: exit status 126: truncated/,
      /weft install.*--force/,
    );
    assert.is(o.lines.find((l) => l.id === "plugin:flannel")?.status, "ok");
    for (const name of ["bridge", "portmap", "host-local"]) pp.usePlugin(name, "weft");

    // The runtime takes the first file by name; the other checks still find flannel's list after it.
    const onlyConflist = async (text: RegExp, fix: RegExp) => {
      const o = await doctor(n0);
      reports(o, "conflist", text, fix);
      assert.is(problems(o).length, 1, o.stdout);
    };
    writeFileSync(broken, '{"cniVersion": "0.3.1", "name": ');
    await onlyConflist(
      /00-broken\.conflist is not valid JSON/,
      /remove or fix it: it sorts before flannel's/,
    );
    writeFileSync(
      broken,
      JSON.stringify({ cniVersion: "9.9.9", name: "x", plugins: [{ type: "loopback" }] }),
    );
    await onlyConflist(/cniVersion "9\.9\.9", which no plugin here speaks/, /remove or fix it/);
    writeFileSync(
      broken,
      JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "loopback" }] }),
    );
    await onlyConflist(
      /uses .*00-broken\.conflist .*has no flannel plugin.*flannel's .* is ignored/,
      /remove .*00-broken/,
    );
  } finally {
    rmSync(broken, { force: true });
    for (const name of ["bridge", "portmap", "host-local"]) pp.usePlugin(name, "weft");
  }
  healthy(await doctor(n0));
});

test("ip_forward off: reported, and --fix turns it on", async () => {
  await nsExec(n0, ["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
  try {
    reports(await doctor(n0), "ip-forward", /ip_forward is 0/, /sysctl -w net\.ipv4\.ip_forward=1/);
    const f = await doctor(n0, ["--fix"]);
    assert.is(f.code, 0, f.stdout);
    assert.is(f.lines.find((l) => l.id === "ip-forward")?.status, "FIXED", f.stdout);
    assert.is((await nsExec(n0, ["sysctl", "-n", "net.ipv4.ip_forward"])).trim(), "1");
  } finally {
    await nsExec(n0, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }
});

test("kube-proxy's ipvs trap: a cluster IP on kube-ipvs0 while IPVS is off", async () => {
  // kube-proxy makes a dummy device; this kernel has no dummy driver, and the trap is the address and
  // its local route whatever the device's kind.
  await nsExec(n0, ["ip", "link", "add", "kube-ipvs0", "type", "bridge"]);
  try {
    await nsExec(n0, ["ip", "addr", "add", "10.96.0.1/32", "dev", "kube-ipvs0"]);
    reports(
      await doctor(n0),
      "kube-ipvs0",
      /holds 10\.96\.0\.1 with local routes.*IPVS is not loaded/,
      /kube-proxy --cleanup|ip link del kube-ipvs0/,
    );
  } finally {
    await nsExec(n0, ["ip", "link", "del", "kube-ipvs0"]);
  }
});

test("an etcd nobody answers at: the endpoint, the deadline and the cause, at once", async () => {
  // A port nothing listens on in the node (connection refused at once).
  const endpoint = "http://127.0.0.1:2";
  const o = await doctor(n0, [`--store=etcd`, `--etcd-endpoints=${endpoint}`]);
  const l = reports(
    o,
    "store",
    /etcd http:\/\/127\.0\.0\.1:2 .*5000 ms deadline.*ECONNREFUSED/,
    /make etcd reachable/,
  );
  assert.match(l.text, /nothing listens there/);
  assert.ok(o.ms < 4000, `doctor took ${o.ms} ms`);
  // What depends on the store says so instead of guessing.
  assert.is(o.lines.find((x) => x.id === "routes")?.status, "skipped");
});

test("weftd stopped: weftd, a route, the VXLAN neighbour and fdb entry, FORWARD and masquerade rules", async () => {
  const subnet1 = n1.subnet();
  const vtep1 = subnet1.replace(/\/\d+$/, "");
  const mac1 = (await n1.ipJson<Array<{ address: string }>>(["link", "show", "flannel.1"]))[0]!.address;
  await n0.stop();
  try {
    await nsExec(n0, ["ip", "route", "del", subnet1]);
    await nsExec(n0, ["ip", "neigh", "del", vtep1, "dev", "flannel.1"]);
    await nsExec(n0, ["bridge", "fdb", "del", mac1, "dev", "flannel.1", "dst", n1.ip]);
    await nsExec(n0, ["iptables", "-P", "FORWARD", "DROP"]);
    await nsExec(n0, ["iptables", "-D", ...FORWARD_JUMP]);
    await nsExec(n0, ["iptables", "-t", "nat", "-F", "FLANNEL-POSTRTG"]);
    const o = await doctor(n0);
    reports(o, "weftd", /does not answer at http:\/\/127\.0\.0\.1:\d+\/healthz.*ECONNREFUSED/, /start weftd/);
    reports(
      o,
      `route:${subnet1}`,
      /no route to node .* pods/,
      /ip route replace .* via .* dev flannel\.1 onlink/,
    );
    reports(o, `vxlan-neigh:${subnet1}`, /no neighbour/, /ip neigh replace .* nud permanent/);
    reports(o, `vxlan-fdb:${subnet1}`, /no fdb entry/, /bridge fdb replace .* dst /);
    reports(
      o,
      "forward-policy",
      /policy is DROP and FLANNEL-FWD does not accept/,
      /iptables -P FORWARD ACCEPT/,
    );
    reports(o, "masq-rules", /FLANNEL-POSTRTG rules .* missing/, /is weftd running/);
    // Without --healthz-url doctor looks for the process.
    const bare = await doctor(
      n0,
      [`--bin-dir=${pp.cniPath}`, `--conf-dir=${pp.confDir}`, `--store-dir=${c.storeDir}`],
      { bare: true },
    );
    reports(bare, "weftd", /no weftd \(or flanneld\) process runs in this network namespace/);
  } finally {
    await nsExec(n0, ["iptables", "-P", "FORWARD", "ACCEPT"]);
    n0.start();
    await n0.ready();
  }
  await until("node0 repaired by weftd", async () => (await doctor(n0)).code === 0, 10_000);
  const withProcess = await doctor(
    n0,
    [`--bin-dir=${pp.cniPath}`, `--conf-dir=${pp.confDir}`, `--store-dir=${c.storeDir}`],
    {
      bare: true,
    },
  );
  assert.match(withProcess.lines.find((l) => l.id === "weftd")?.text ?? "", /weftd \(pid \d+\) runs here/);
});

/** Sets a file's times an hour back: a leak judged by doctor is older than its grace period. */
function age(dir: string): void {
  const past = new Date(Date.now() - 3600_000);
  for (const f of readdirSync(dir)) utimesSync(join(dir, f), past, past);
}

test("leaks reported and released by --fix, never what a live pod holds", async () => {
  const natSave = () => nsExec(n0, ["iptables-save", "-t", "nat"]);
  // A pod whose DEL never came: its namespace went (and its veth with it), the rest stayed.
  const lost = pp.pod("wdl");
  const lostIp = ipOf(
    (
      pp.addOk(lost, {
        capArgs: { portMappings: [{ hostPort: 18082, containerPort: 80, protocol: "tcp" }] },
      }) as {
        ips: Array<{ address: string }>;
      }
    ).ips[0]!.address,
  );
  lost.netns.delete();
  const lostChain = dnatChainName(pp.netName, lost.containerId);
  // A pod whose namespace lost its name while a process kept it; the runtime's DEL could not reach it
  // (anchors 6.7): IPAM, the saved config and the chain went, the veth stayed on cni0.
  const stray = pp.pod("wds");
  pp.addOk(stray);
  const portsBefore = pp.bridgePorts();
  const sleeper = spawn("ip", ["netns", "exec", stray.netns.name, "sleep", "600"], { stdio: "ignore" });
  sleepers.push(sleeper);
  await until(
    "a process in the stray pod",
    () => execFileSync("ip", ["netns", "pids", stray.netns.name], { encoding: "utf8" }).trim() !== "",
  );
  stray.netns.delete();
  const del = pp.del(stray);
  assert.is(del.status, 0, del.stdout + del.stderr);
  assert.is(pp.bridgePorts().length, portsBefore.length, "the stray pod's veth stays on cni0");
  // A saved config whose pod never got further.
  writeFileSync(join(pp.flannelDataDir, "gone-container"), '{"type":"bridge"}');
  // Every file old: the live pod's too, so only the kernel's view can keep it.
  age(pp.reservationDir);
  age(pp.flannelDataDir);
  const liveRes = pp.reservations().find((r) => r === live.ip);
  assert.ok(liveRes, "the live pod's reservation");
  const liveChain = dnatChainName(pp.netName, live.pod.containerId);
  assert.match(await natSave(), new RegExp(`:${liveChain} `));

  const o = await doctor(n0);
  reports(
    o,
    `leak-reservation:${lostIp}`,
    new RegExp(`container ${lost.containerId}.*no pod`),
    /--fix releases/,
  );
  reports(o, `leak-saved-config:${lost.containerId}`, /saved delegate config/, /--fix removes/);
  reports(o, "leak-saved-config:gone-container", /saved delegate config/);
  reports(
    o,
    `leak-chain:${lostChain}`,
    new RegExp(`hostPort chain .*${lost.containerId}.*${lostIp.replace(/\./g, "\\.")}`),
  );
  const vethLines = problems(o).filter((l) => l.id.startsWith("leak-veth:"));
  assert.is(vethLines.length, 1, o.stdout);
  assert.match(vethLines[0]!.text, /no name any more \(held only by \/proc\/\d+\/ns\/net/);
  // Nothing of the live pods is judged a leak.
  for (const l of problems(o)) {
    assert.not.match(
      l.text,
      new RegExp(`${live.pod.containerId}|${live.ip.replace(/\./g, "\\.")}\\b|${liveChain}`),
      l.text,
    );
  }
  assert.is(problems(o).length, 5, o.stdout);

  const f = await doctor(n0, ["--fix"]);
  assert.is(f.code, 0, f.stdout);
  assert.is(f.lines.filter((l) => l.status === "FIXED").length, 5, f.stdout);
  // Gone: the lost pod's reservation, configs and chain, the stray veth.
  assert.not.ok(pp.reservations().includes(lostIp));
  assert.not.ok(pp.savedConfigs().includes(lost.containerId));
  assert.not.ok(pp.savedConfigs().includes("gone-container"));
  assert.not.match(await natSave(), new RegExp(`${lostChain}`));
  assert.is(pp.bridgePorts().length, portsBefore.length - 1);
  // Kept: everything the live pod holds, and its traffic.
  assert.ok(pp.reservations().includes(live.ip));
  assert.ok(pp.savedConfigs().includes(live.pod.containerId));
  assert.match(await natSave(), new RegExp(`:${liveChain} `));
  assert.ok(await pingOk(remote, live.ip), "node1's pod reaches the live pod");
  const livePod: ClusterPod = { node: n0, pod: live.pod, ip: live.ip, label: `${n0.name}/${live.ip}` };
  assert.ok(await pingOk(livePod, remote.ip), "the live pod reaches node1's pod");
  healthy(await doctor(n0));
});

test.run();

/**
 * The other backend on the other store: host-gw on an etcd with TLS client certificates (doctor takes
 * weftd's own store flags), and etcd going away under a running cluster.
 */
const onEtcd = suite("weft doctor: host-gw on etcd");
let e: Cluster;

onEtcd.before(async () => {
  e = await Cluster.create({
    nodes: 2,
    netConf: { Network: "10.244.0.0/16", Backend: { Type: "host-gw" } },
    store: hubEtcd({ tls: true }),
  });
  await e.startAll();
  await e.nodes[0]!.addPod();
  await e.nodes[1]!.addPod();
});

onEtcd.after(async () => {
  await e?.cleanup();
});

onEtcd(
  "a healthy host-gw node on etcd: no problem; the route via the other node, no VXLAN checks",
  async () => {
    const [a, b] = [e.nodes[0]!, e.nodes[1]!];
    const o = await doctor(a);
    healthy(o);
    assert.match(o.lines.find((l) => l.id === "store")?.text ?? "", /^etcd https:\/\/.*: 2 leases$/);
    assert.match(
      o.lines.find((l) => l.id === `route:${b.subnet()}`)?.text ?? "",
      new RegExp(`via ${b.ip} dev eth0`),
    );
    assert.not.ok(
      o.lines.some((l) => l.id.startsWith("vxlan")),
      o.stdout,
    );
  },
);

onEtcd("etcd stopped under the cluster: the store check names the endpoint and the cause", async () => {
  const a = e.nodes[0]!;
  await e.etcd.kill();
  const o = await doctor(a);
  reports(
    o,
    "store",
    new RegExp(`etcd ${e.etcd.endpoint.replace(/\./g, "\\.")}.*ECONNREFUSED`),
    /make etcd reachable/,
  );
  // weftd keeps its lease and routes while etcd is away.
  assert.is(o.lines.find((l) => l.id === "weftd")?.status, "ok", o.stdout);
  assert.is(problems(o).length, 1, o.stdout);
});

onEtcd.run();
