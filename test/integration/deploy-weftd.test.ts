/**
 * What deploy/weft.yml claims about weftd's container, tried on this machine without a container engine:
 *  - weftd needs no privileged container: two nodes run the packaged weftd with the capabilities of a
 *    runtime's default set plus NET_ADMIN and NET_RAW only (the bounding set, so its ip/iptables children
 *    have no more) and /proc/sys read-only, as a non-privileged container sees them; both get ready, route
 *    to each other over vxlan and install their iptables chains. Such a weftd cannot do what the plugins
 *    do (enter a pod's namespace, write /proc/sys): asked to serve CNI calls, it declines to, and a pod
 *    still starts through the plugins themselves. Its mounts are slave, as a container's hostPath
 *    mounts with HostToContainer propagation: it sees pod namespaces created after its start.
 *  - the manifest's cni container, `weftd --cni-only` privileged with slave mounts, serves a node's pods
 *    (ADD and DEL with a hostPort) next to that weftd, and /metrics counts the calls.
 *  - deploy/iptables-mode.sh picks the iptables variant the node uses (--print: the choice, no change);
 *    the switch itself (update-alternatives in the image) is not run here: it would change this host.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { packagedWeftd } from "../helpers/cluster.js";
import { repoRoot } from "../helpers/cnitool.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { PodPath } from "../helpers/podpath.js";
import { Underlay } from "../helpers/underlay.js";
import { until, Weftd } from "../helpers/weftd.js";

/** containerd's and Docker's default capabilities, plus what deploy/weft.yml adds. */
const CONTAINER_CAPS = [
  "chown",
  "dac_override",
  "fsetid",
  "fowner",
  "mknod",
  "net_raw",
  "setgid",
  "setuid",
  "setfcap",
  "setpcap",
  "net_bind_service",
  "sys_chroot",
  "kill",
  "audit_write",
  "net_admin",
];
const CAP_SYS_ADMIN = 21n;
const CAP_NET_ADMIN = 12n;
const HEALTH = 9100;

/**
 * Runs its arguments as a non-privileged container would: own mounts (receiving the host's, as
 * HostToContainer), /proc/sys read-only, few caps.
 */
const WRAPPER = `#!/bin/sh
exec unshare --mount --propagation slave sh -c '
  mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys &&
  exec setpriv --bounding-set -all,${CONTAINER_CAPS.map((c) => `+${c}`).join(",")} --inh-caps -all "$@"
' sh "$@"
`;

interface Ctx {
  dir: string;
  underlay: Underlay;
  daemons: Weftd[];
}

const c = suite<Ctx>("deploy: weftd in a non-privileged container's capabilities", {} as Ctx);

c.before((ctx) => {
  assertRoot();
  ctx.dir = mkdtempSync(join(tmpdir(), "weft-deploy-"));
  ctx.underlay = Underlay.create(2);
  ctx.daemons = [];
});

c.after(async (ctx) => {
  for (const d of ctx.daemons) await d.stop("SIGKILL");
  ctx.underlay?.destroy();
  rmSync(ctx.dir, { recursive: true, force: true });
});

c("the harness itself: /proc/sys is read-only and CAP_SYS_ADMIN is gone", (ctx) => {
  const wrapper = join(ctx.dir, "as-container");
  writeFileSync(wrapper, WRAPPER);
  chmodSync(wrapper, 0o755);
  const node = ctx.underlay.nodes[0]!;
  const out = node.netns.exec([
    wrapper,
    "sh",
    "-c",
    "grep CapBnd /proc/self/status; { echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>/dev/null && echo writable || echo read-only",
  ]);
  const bnd = BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(out)![1]}`);
  assert.is((bnd >> CAP_SYS_ADMIN) & 1n, 0n, "no CAP_SYS_ADMIN");
  assert.is((bnd >> CAP_NET_ADMIN) & 1n, 1n, "CAP_NET_ADMIN");
  assert.match(out, "read-only");
});

c("two nodes get ready, route to each other over vxlan and install their chains", async (ctx) => {
  const wrapper = join(ctx.dir, "as-container");
  const store = join(ctx.dir, "leases");
  const netConf = join(ctx.dir, "net-conf.json");
  writeFileSync(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  for (const node of ctx.underlay.nodes) {
    const dir = join(ctx.dir, node.netns.name);
    mkdirSync(dir);
    ctx.daemons.push(
      new Weftd({
        node,
        exe: wrapper,
        args: [
          packagedWeftd(),
          `--store-dir=${store}`,
          `--net-config-path=${netConf}`,
          `--subnet-file=${join(dir, "subnet.env")}`,
          "--iface=eth0",
          "--ip-masq",
          `--healthz-port=${HEALTH}`,
          `--cni-socket=${join(dir, "cni.sock")}`,
        ],
        logFile: join(dir, "weftd.log"),
      }),
    );
  }
  for (const d of ctx.daemons) {
    await until(
      `${d.o.node.netns.name} ready`,
      () => d.code === undefined && d.http("127.0.0.1", HEALTH, "/readyz").status === 200,
      30_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; exit ${d.code}; log:\n${d.log()}`);
    });
    // The daemon really runs with the container's capabilities (ip netns exec and the wrapper exec in
    // place, so the child's pid is weftd's).
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${d.child.pid}/status`, "utf8"))![1]!;
    assert.is((BigInt(`0x${eff}`) >> CAP_SYS_ADMIN) & 1n, 0n, "weftd has no CAP_SYS_ADMIN");
  }
  const subnets = ctx.underlay.nodes.map((n) => {
    const env = readFileSync(join(ctx.dir, n.netns.name, "subnet.env"), "utf8");
    return /^FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24$/m.exec(env)![1]!;
  });
  const [a, b] = ctx.underlay.nodes;
  assert.match(a!.netns.exec(["ip", "route", "show", `${subnets[1]}.0/24`]), "dev flannel.1");
  assert.match(b!.netns.exec(["ip", "route", "show", `${subnets[0]}.0/24`]), "dev flannel.1");
  for (const n of ctx.underlay.nodes) {
    assert.match(n.netns.exec(["iptables-save", "-t", "nat"]), "-A FLANNEL-POSTRTG");
    assert.match(n.netns.exec(["iptables-save", "-t", "filter"]), "-A FLANNEL-FWD");
  }
});

/** Pods on the node `node` through the kube-flannel list, whose plugins use (and say whether they used) `sock`. */
function clientPodPath(node: TestNetns, dir: string, sock: string): Promise<PodPath> {
  return PodPath.create({
    node,
    subnetFile: join(dir, "subnet.env"),
    delegates: "weft",
    clientEnv: { WEFT_CNI_SOCKET: sock, WEFT_CNI_SOCKET_DEBUG: "1" },
  });
}

c(
  "a weftd lacking what the plugins need (CAP_SYS_ADMIN, a writable /proc/sys) does not serve CNI calls: pods still start",
  async (ctx) => {
    // Node A's weftd was asked to serve (--cni-socket) with a non-privileged container's capabilities.
    const node = ctx.underlay.nodes[0]!;
    const dir = join(ctx.dir, node.netns.name);
    const sock = join(dir, "cni.sock");
    const pp = await clientPodPath(node.netns, dir, sock);
    try {
      const pod = pp.pod("wdpa");
      const r = pp.add(pod, {
        capArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
      });
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /not used: no such socket/, r.stderr + ctx.daemons[0]!.log());
      assert.match(ctx.daemons[0]!.log(), /Not serving CNI calls on \S+cni\.sock: .*CAP_SYS_ADMIN/);
      assert.not.ok(existsSync(sock));
      assert.is(pp.del(pod).status, 0);
    } finally {
      pp.cleanup();
    }
  },
);

c(
  "the manifest's cni container (weftd --cni-only, privileged, slave mounts) serves the pods of a node",
  async (ctx) => {
    const node = ctx.underlay.nodes[1]!;
    const dir = join(ctx.dir, node.netns.name);
    const sock = join(dir, "run-weft", "cni.sock");
    // All capabilities and /proc/sys writable, as privileged; mounts of its own receiving the host's.
    const cni = new Weftd({
      node,
      exe: "unshare",
      args: [
        "--mount",
        "--propagation",
        "slave",
        packagedWeftd(),
        "--cni-only",
        `--cni-socket=${sock}`,
        `--subnet-file=${join(dir, "subnet.env")}`,
        "--healthz-ip=127.0.0.1",
        `--healthz-port=${HEALTH + 1}`,
      ],
      logFile: join(dir, "cni.log"),
      env: { WEFT_LOG_STDERR_LEVEL: "debug" },
    });
    ctx.daemons.push(cni);
    await until(
      "the cni container serves",
      () => cni.code !== undefined || /Serving CNI calls on/.test(cni.log()),
    );
    assert.is(cni.code, undefined, cni.log());
    const pp = await clientPodPath(node.netns, dir, sock);
    try {
      const pod = pp.pod("wdpb");
      const capArgs = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] };
      const r = pp.add(pod, { capArgs });
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.not.match(r.stderr, /not used/, "served");
      const ip = ((r.json?.ips ?? []) as Array<{ address: string }>)[0]!.address;
      assert.ok(ip.startsWith(pp.net.subnet!.replace(/0\/24$/, "")), `${ip} in the node's ${pp.net.subnet}`);
      assert.is((cni.log().match(/served a CNI call/g) ?? []).length, 2);
      const metrics = cni.http("127.0.0.1", HEALTH + 1, "/metrics");
      assert.match(metrics.body, 'weftd_cni_calls_total{plugin="flannel",verb="ADD"} 1');
      const del = pp.del(pod, { capArgs });
      assert.is(del.status, 0, del.stdout + del.stderr);
      assert.not.match(del.stderr, /not used/, "served");
      assert.equal(pp.reservations(), []);
    } finally {
      pp.cleanup();
    }
  },
);

c.run();

const script = join(repoRoot(), "deploy", "iptables-mode.sh");
const hostIptables = () => execFileSync("readlink", ["-f", "/usr/sbin/iptables"], { encoding: "utf8" });
const m = suite<{ ns: TestNetns; host: string }>(
  "deploy: iptables-mode.sh picks the node's iptables variant",
  {} as { ns: TestNetns; host: string },
);

m.before((ctx) => {
  assertRoot();
  ctx.host = hostIptables();
  ctx.ns = TestNetns.create("wipm");
});
m.after((ctx) => ctx.ns?.delete());

const choice = (ns: TestNetns) => ns.exec([script, "--print"]).trim();

m("a node with no rules: nft, Debian's default", ({ ns }) => {
  assert.is(choice(ns), "nft (0 legacy rules, 0 nft rules)");
});

m("more legacy rules: legacy; more nft rules: nft", ({ ns }) => {
  ns.exec(["iptables-legacy", "-A", "INPUT", "-j", "ACCEPT"]);
  assert.is(choice(ns), "legacy (1 legacy rules, 0 nft rules)");
  ns.exec(["iptables-nft", "-A", "INPUT", "-j", "ACCEPT"]);
  ns.exec(["ip6tables-nft", "-A", "INPUT", "-j", "ACCEPT"]);
  assert.is(choice(ns), "nft (1 legacy rules, 2 nft rules)");
});

m("kubelet's hint chain decides over the counts", ({ ns }) => {
  ns.exec(["iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"]);
  assert.is(choice(ns), "legacy (kubelet's hint chain is in the legacy tables)");
});

m("--print changed nothing: the host's iptables alternative is as before the suite", ({ host }) => {
  assert.is(hostIptables(), host);
});

m.run();
