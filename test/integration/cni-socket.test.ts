/**
 * weftd serving the plugins' calls on its Unix socket (the resident fast path), with the packaged
 * executables (`npm run build` first): a node is a network namespace with `weftd --cni-only` in it, pods
 * are added through libcni (cnitool) with the kube-flannel list from inside the node, as a runtime does.
 *
 *  - a served call: the daemon's log and /metrics count it, and its reply is what the plugin prints;
 *  - the fallbacks (no socket file, a stale one, WEFT_CNI_SOCKET=off, a client in another network
 *    namespace, a pod namespace or a plugin executable weftd does not see as the client does): the
 *    client does the work itself, with the same result;
 *  - hostile requests on the socket get an error reply and the daemon keeps serving; a config as large
 *    as a plugin accepts is served, a larger one gets the plugin's own error;
 *  - only root can connect;
 *  - weftd stopped, killed mid-call and restarted under a stream of ADD/DEL: only CNI error 11, and after
 *    the runtime's DEL and re-ADD every pod has its address and nothing is left behind;
 *  - 20 pods at once get 20 distinct addresses;
 *  - SIGTERM lets the call in flight finish and removes the socket file at once.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { MAX_REQUEST_BYTES, PROTOCOL_VERSION } from "../../shared/cni/socket-protocol.js";
import { STDIN_LIMIT } from "../../shared/cni/stdin.js";
import { packagedWeftd } from "../helpers/cluster.js";
import { type CnitoolRun, cnitool } from "../helpers/cnitool.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { ipOf, type Pod, PodPath, weftBinDir } from "../helpers/podpath.js";
import type { UnderlayNode } from "../helpers/underlay.js";
import { until, Weftd } from "../helpers/weftd.js";

const HEALTH = 9100;
const NOT_USED = /^weft: .* not used: /m;

interface Ctx {
  dir: string;
  /** The node: weftd and the clients run in it; the bridge is there. */
  node: TestNetns;
  pp: PodPath;
  sock: string;
  daemons: Weftd[];
  starts: number;
}

const t = suite<Ctx>("weftd serves CNI calls on its socket", {} as Ctx);

t.before(async (ctx) => {
  assertRoot();
  ctx.dir = mkdtempSync(join(tmpdir(), "weft-cnisock-"));
  ctx.node = TestNetns.create("wcsn");
  ctx.sock = join(ctx.dir, "run", "cni.sock");
  ctx.daemons = [];
  ctx.starts = 0;
  // ipMasq false in subnet.env: the bridge masquerades each pod (a CNI-<hash> chain per pod to leak).
  ctx.pp = await PodPath.create({
    node: ctx.node,
    delegates: "weft",
    ipMasq: false,
    clientEnv: { WEFT_CNI_SOCKET: ctx.sock, WEFT_CNI_SOCKET_DEBUG: "1" },
  });
});

t.after.each(async (ctx) => {
  for (const d of ctx.daemons) await d.stop("SIGKILL");
  ctx.daemons = [];
  // A failed test leaves no pod to the next one.
  ctx.pp.delAdded({ env: { WEFT_CNI_SOCKET: "off" } });
});

t.after(async (ctx) => {
  for (const d of ctx.daemons) await d.stop("SIGKILL");
  ctx.pp?.cleanup();
  ctx.node?.delete();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** `weftd --cni-only` in the node, serving ctx.sock; resolves once it serves. `wrap`: a command run before it. */
async function startDaemon(ctx: Ctx, wrap: string[] = []): Promise<Weftd> {
  ctx.starts += 1;
  const exe = wrap.length > 0 ? wrap[0]! : packagedWeftd();
  const d = new Weftd({
    node: { netns: ctx.node } as UnderlayNode,
    exe,
    logFile: join(ctx.dir, `weftd-${ctx.starts}.log`),
    env: { WEFT_LOG_STDERR_LEVEL: "debug" },
    args: [
      ...(wrap.length > 0 ? [...wrap.slice(1), packagedWeftd()] : []),
      "--cni-only",
      `--cni-socket=${ctx.sock}`,
      `--subnet-file=${ctx.pp.subnetEnvFile}`,
      "--healthz-ip=127.0.0.1",
      `--healthz-port=${HEALTH}`,
    ],
  });
  ctx.daemons.push(d);
  await until("weftd serves its socket", () => d.code !== undefined || /Serving CNI calls on/.test(d.log()));
  if (d.code !== undefined) throw new Error(`weftd exited ${d.code}:\n${d.log()}`);
  return d;
}

/** Calls a daemon served (it logs each at debug level). */
function served(d: Weftd): number {
  return (d.log().match(/served a CNI call/g) ?? []).length;
}

function assertServed(r: CnitoolRun, what: string): void {
  assert.is(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  assert.not.match(r.stderr, NOT_USED, `${what} was served`);
}

/** The ADD result with what differs from pod to pod replaced, to compare served and local results. */
function shape(pp: PodPath, result: Record<string, unknown> | undefined): unknown {
  const r = structuredClone(result) as {
    interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
    ips?: Array<{ address: string }>;
  };
  for (const i of r.interfaces ?? []) {
    if (i.mac) i.mac = "<mac>";
    if (i.sandbox) i.sandbox = "<netns>";
    if (i.name !== pp.bridge && i.name !== "eth0") i.name = "<veth>";
  }
  for (const ip of r.ips ?? []) ip.address = ip.address.replace(/^[^/]+/, "<ip>");
  return r;
}

/** The pod's IPv4 address from an ADD result. */
function addressOf(r: CnitoolRun): string {
  const ips = (r.json?.ips ?? []) as Array<{ address: string }>;
  return ipOf(ips[0]!.address);
}

/** The addresses of the pod's eth0, as the kernel has them. */
function podAddresses(pod: Pod): string[] {
  const links = pod.netns.ipJson<Array<{ addr_info: Array<{ local: string }> }>>([
    "-4",
    "addr",
    "show",
    "eth0",
  ]);
  return links.flatMap((l) => l.addr_info.map((a) => a.local));
}

/** One raw exchange on the socket: `payload`, the end of the client's side, then all weftd answers. */
function rawExchange(sock: string, payload: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    const chunks: Buffer[] = [];
    s.on("connect", () => {
      s.end(payload);
    });
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** A well-formed request from this process (a namespace other than the daemon's). */
function request(over: Record<string, unknown> = {}): Record<string, unknown> {
  const st = statSync("/proc/self/ns/net");
  const exe = statSync(process.execPath);
  return {
    v: PROTOCOL_VERSION,
    plugin: "flannel",
    env: { CNI_COMMAND: "VERSION" },
    stdin: Buffer.from('{"cniVersion":"1.0.0"}').toString("base64"),
    netns: { dev: st.dev, ino: st.ino },
    podNetns: null,
    exe: { path: process.execPath, dev: exe.dev, ino: exe.ino },
    ...over,
  };
}

/** Holds host-local's lock of the test network (flock(1), as the reference locks it) until released. */
function holdIpamLock(pp: PodPath): { release: () => Promise<void>; lockFile: string } {
  mkdirSync(pp.reservationDir, { recursive: true });
  const lockFile = join(pp.reservationDir, "lock");
  // -o: cat does not inherit the lock; flock holds it until cat ends (stdin closed).
  const holder: ChildProcess = spawn("flock", ["-o", lockFile, "cat"], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  const exited = new Promise<void>((r) => holder.on("exit", () => r()));
  return {
    lockFile,
    release: async () => {
      holder.stdin?.end();
      await exited;
    },
  };
}

function lockIsFree(lockFile: string): boolean {
  return spawnSync("flock", ["-n", lockFile, "true"]).status === 0;
}

/** A weftd child waiting for a flock: the served call is at the door of host-local's critical section. */
function waitsForLock(d: Weftd): boolean {
  for (const pid of readdirSync("/proc").filter((f) => /^\d+$/.test(f))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...
    const m = /^\d+ \((.*)\) \S+ (\d+) /.exec(stat);
    if (m?.[1] === "flock" && Number(m[2]) === d.child.pid) return true;
  }
  return false;
}

/** Chains in the node's nat table that belong to single pods (bridge masquerade, portmap DNAT). */
function podChains(ctx: Ctx): string[] {
  const nat = ctx.node.exec(["iptables-save", "-t", "nat"]);
  return [...nat.matchAll(/^:(CNI-DN-[0-9a-f]+|CNI-[0-9a-f]{24}) /gm)].map((m) => m[1]!);
}

/**
 * weftd started, and a pod ADDed through it: what a call the daemon does not serve must give the same
 * result as. `before`: the calls weftd served so far.
 */
async function servedReference(ctx: Ctx, tag: string) {
  const d = await startDaemon(ctx);
  const servedPod = ctx.pp.pod(tag);
  const reference = ctx.pp.add(servedPod);
  assertServed(reference, "ADD");
  return { d, servedPod, reference, before: served(d) };
}

/** Nothing of any pod is left: reservations, saved flannel configs, veths on the bridge, pod chains. */
function assertNothingLeft(ctx: Ctx): void {
  assert.equal(ctx.pp.reservations(), [], "host-local reservations");
  assert.equal(ctx.pp.savedConfigs(), [], "flannel's saved delegate configs");
  assert.equal(ctx.pp.bridgePorts(), [], "veths on the bridge");
  assert.equal(podChains(ctx), [], "per-pod chains in the node's nat table");
}

const hostPort = (i: number) => ({
  portMappings: [{ hostPort: 31000 + i, containerPort: 80, protocol: "tcp" }],
});

t(
  "a served call: the log and /metrics count it, the pod gets its address, errors are counted by code",
  async (ctx) => {
    const { pp } = ctx;
    const d = await startDaemon(ctx);
    const pod = pp.pod("wcsa");
    const add = pp.add(pod, { capArgs: hostPort(1) });
    assertServed(add, "ADD");
    // flannel (bridge and host-local in-process) and portmap: two plugin executions, two served calls.
    assert.is(served(d), 2, d.log());
    assert.match(
      d.log(),
      new RegExp(`served a CNI call.* plugin=flannel verb=ADD cid=${pod.containerId} exit=0`),
    );
    assert.match(
      d.log(),
      new RegExp(`served a CNI call.* plugin=portmap verb=ADD cid=${pod.containerId} exit=0`),
    );
    assert.equal(podAddresses(pod), [addressOf(add)]);
    assert.equal(pp.reservations(), [addressOf(add)]);

    const metrics = d.http("127.0.0.1", HEALTH, "/metrics");
    assert.is(metrics.status, 200);
    assert.match(metrics.body, 'weftd_cni_calls_total{plugin="flannel",verb="ADD"} 1');
    assert.match(metrics.body, 'weftd_cni_calls_total{plugin="portmap",verb="ADD"} 1');
    assert.match(metrics.body, 'weftd_cni_call_duration_seconds_count{plugin="flannel",verb="ADD"} 1');
    assert.match(
      metrics.body,
      `weftd_ipam_addresses{network="${pp.reservationDir}",range="${pp.net.subnet}",state="used"} 1`,
    );
    assert.match(
      metrics.body,
      `weftd_ipam_addresses{network="${pp.reservationDir}",range="${pp.net.subnet}",state="free"} 252`,
    );

    // A call that fails is served as well, counted by its code, and answers what the plugin itself prints.
    const ghost = pp.pod("wcsg");
    const bad = pp.add(ghost, { netnsPath: "/var/run/netns/weft-no-such-netns" });
    assert.is(bad.status, 1, bad.stdout);
    assert.not.match(bad.stderr, NOT_USED);
    const local = pp.add(ghost, {
      netnsPath: "/var/run/netns/weft-no-such-netns",
      env: { WEFT_CNI_SOCKET: "off" },
    });
    assert.is(local.status, 1);
    assert.equal(bad.json, local.json, "the served failure is the plugin's own");
    const code = String(bad.json?.code);
    const after = d.http("127.0.0.1", HEALTH, "/metrics").body;
    assert.match(after, `weftd_cni_call_errors_total{plugin="flannel",verb="ADD",code="${code}"} 1`);
    assert.match(after, 'weftd_cni_calls_total{plugin="flannel",verb="ADD"} 2');
    assert.is(pp.del(ghost).status, 0);

    assertServed(pp.del(pod, { capArgs: hostPort(1) }), "DEL");
    assert.match(
      d.log(),
      new RegExp(`served a CNI call.* plugin=flannel verb=DEL cid=${pod.containerId} exit=0`),
    );
    assertNothingLeft(ctx);
  },
);

t(
  "fallback: no socket file, a stale socket, WEFT_CNI_SOCKET=off: the client does the work, same result",
  async (ctx) => {
    const { pp } = ctx;
    const { d, servedPod, reference, before } = await servedReference(ctx, "wcsf");

    const stale = join(ctx.dir, "stale.sock");
    // A socket file nobody listens on, as a killed weftd leaves it.
    spawnSync(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    assert.ok(statSync(stale).isSocket());
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ["no socket file", { WEFT_CNI_SOCKET: join(ctx.dir, "none.sock") }, /not used: no such socket/],
      ["a stale socket file", { WEFT_CNI_SOCKET: stale }, /stale\.sock not used: ECONNREFUSED/],
      ["WEFT_CNI_SOCKET=off", { WEFT_CNI_SOCKET: "off" }, /not used: WEFT_CNI_SOCKET=off/],
      ["WEFT_CNI_SOCKET empty", { WEFT_CNI_SOCKET: "" }, /not used: WEFT_CNI_SOCKET=$/m],
    ];
    const pods: Pod[] = [];
    for (const [what, env, why] of cases) {
      const pod = pp.pod("wcsf");
      pods.push(pod);
      const r = pp.add(pod, { env });
      assert.is(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
      // flannel and portmap each say why they did the work themselves.
      assert.is(r.stderr.match(new RegExp(why.source, "gm"))?.length, 2, `${what}: ${r.stderr}`);
      assert.equal(shape(pp, r.json), shape(pp, reference.json), `${what}: the result`);
      assert.equal(podAddresses(pod), [addressOf(r)], what);
    }
    assert.is(served(d), before, "weftd served none of them");
    for (const pod of [servedPod, ...pods]) assertServed(pp.del(pod), "DEL");
    assertNothingLeft(ctx);
  },
);

t(
  "a client in another network namespace is not served: it does the work itself, same result",
  async (ctx) => {
    const { pp } = ctx;
    const { d, servedPod, reference, before } = await servedReference(ctx, "wcso");
    const other = TestNetns.create("wcsx");
    try {
      const pod = pp.pod("wcso");
      const opts = pp.toolOptions({ containerId: pod.containerId, ifname: "eth0", clientNetns: other.path });
      const r = cnitool("add", pp.netName, pod.netns.path, opts);
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /not used: not served here: the client is in another network namespace/);
      assert.equal(shape(pp, r.json), shape(pp, reference.json));
      assert.equal(podAddresses(pod), [addressOf(r)]);
      // The other node's bridge holds the pod.
      assert.match(other.exec(["ip", "-o", "link", "show", "master", pp.bridge]), /veth/);
      assert.is(cnitool("del", pp.netName, pod.netns.path, opts).status, 0);
      assert.is(served(d), before, "weftd served none of its calls");
    } finally {
      other.delete();
    }
    assertServed(pp.del(servedPod), "DEL");
    assertNothingLeft(ctx);
  },
);

t(
  "a client whose executable weftd does not see (the CNI bin dir not mounted into it) is not served",
  async (ctx) => {
    const { pp } = ctx;
    // A CNI_PATH of its own: weft's executable under the plugins' names.
    const alt = join(ctx.dir, "alt-bin");
    mkdirSync(alt);
    try {
      linkSync(join(weftBinDir(), "weft"), join(alt, "weft"));
    } catch {
      copyFileSync(join(weftBinDir(), "weft"), join(alt, "weft")); // another filesystem
    }
    for (const name of ["flannel", "bridge", "host-local", "portmap"])
      linkSync(join(alt, "weft"), join(alt, name));
    try {
      // weftd sees an empty directory there, as in a container without the node's CNI bin dir.
      const d = await startDaemon(ctx, [
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "sh",
        "-c",
        `mount -t tmpfs tmpfs ${alt} && exec "$0" "$@"`,
      ]);
      const pod = pp.pod("wcsb");
      const opts = pp.toolOptions({ containerId: pod.containerId, ifname: "eth0", cniPath: alt });
      const r = cnitool("add", pp.netName, pod.netns.path, opts);
      assert.is(r.status, 0, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /not used: not served here: weftd does not see \S+alt-bin\/flannel as the client does/,
      );
      assert.is(served(d), 0);
      assert.equal(podAddresses(pod), [addressOf(r)]);
      assert.is(cnitool("del", pp.netName, pod.netns.path, opts).status, 0);
      assertNothingLeft(ctx);
    } finally {
      rmSync(alt, { recursive: true, force: true });
    }
  },
);

t(
  "a pod namespace weftd does not see as the client does (no HostToContainer propagation) is not served",
  async (ctx) => {
    const { pp } = ctx;
    // weftd in a mount namespace of its own with private propagation: namespaces created after its start
    // (every pod's) are not mounted in its view, as in a container without HostToContainer on /var/run/netns.
    const d = await startDaemon(ctx, ["unshare", "--mount", "--propagation", "private"]);
    const pod = pp.pod("wcsp");
    const r = pp.add(pod);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /not used: not served here: weftd cannot open .* as the client sees it .*HostToContainer/,
    );
    assert.is(served(d), 0);
    assert.equal(podAddresses(pod), [addressOf(r)]);
    assert.is(pp.del(pod).status, 0);
    assertNothingLeft(ctx);
  },
);

t(
  "malformed, oversized, truncated, wrongly typed requests get an error reply; weftd keeps serving",
  async (ctx) => {
    const { pp } = ctx;
    const d = await startDaemon(ctx);
    const next = pp.pod("wcsm");
    let calls = 0;
    /** A call after each bad request: a DEL of a pod never added, served as any. */
    const stillServes = (what: string) => {
      assertServed(pp.del(next), `the DEL after ${what}`);
      calls += 2;
      assert.is(served(d), calls, `served after ${what}`);
    };
    const cniError = (reply: string, what: string, msg: RegExp) => {
      assert.ok(reply.endsWith("\n"), `${what}: one reply line`);
      const r = JSON.parse(reply) as { stdout: string; exitCode: number; stderr: string };
      assert.is(r.exitCode, 1, what);
      const e = JSON.parse(r.stdout) as { code: number; msg: string };
      assert.is(e.code, 999, what);
      assert.match(e.msg, msg, what);
    };
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ["not JSON", "{this is not json\n", /^malformed request: /],
      ["a JSON array", "[1,2]\n", /^malformed request: not a JSON object$/],
      [
        "an env that is a string",
        `${JSON.stringify(request({ env: "CNI_COMMAND=ADD" }))}\n`,
        /env is not an object/,
      ],
      [
        "an env value that is a number",
        `${JSON.stringify(request({ env: { CNI_COMMAND: 1 } }))}\n`,
        /env CNI_COMMAND/,
      ],
      [
        "a netns that is a path",
        `${JSON.stringify(request({ netns: "/proc/self/ns/net" }))}\n`,
        /netns is not/,
      ],
      ["stdin that is an object", `${JSON.stringify(request({ stdin: {} }))}\n`, /stdin is not a string/],
      ["no line break, then the end", JSON.stringify(request()), /^truncated request/],
      ["nothing, then the end", "", /^empty request$/],
      ["more than MAX_REQUEST_BYTES", Buffer.alloc(MAX_REQUEST_BYTES + 1, "x"), /^request larger than/],
    ];
    for (const [what, payload, msg] of cases) {
      cniError(await rawExchange(ctx.sock, payload), what, msg);
      stillServes(what);
    }
    // A plugin this weftd does not have, or another protocol: "not served here", the client's own work.
    const declined: Array<[string, Record<string, unknown>, RegExp]> = [
      ["an unknown plugin", { plugin: "nosuch" }, /^no plugin nosuch here$/],
      ["another protocol", { v: PROTOCOL_VERSION + 1 }, /^protocol \d+ is not this weftd's \d+$/],
    ];
    for (const [what, over, why] of declined) {
      const reply = JSON.parse(await rawExchange(ctx.sock, `${JSON.stringify(request(over))}\n`)) as {
        notServed?: string;
      };
      assert.match(String(reply.notServed), why, what);
      stillServes(what);
    }
    // A client that connects and goes away without a word costs nothing.
    await new Promise<void>((resolve) => {
      const s = connect(ctx.sock);
      s.on("connect", () => {
        s.destroy();
        resolve();
      });
    });
    stillServes("a client that left");
    assert.is(d.code, undefined, "weftd still runs");
    assertNothingLeft(ctx);
  },
);

t(
  "a config up to the plugin's stdin limit is served; beyond it the answer is the plugin's own",
  async (ctx) => {
    const d = await startDaemon(ctx);
    const hostLocal = join(weftBinDir(), "host-local");
    const conf = (size: number) => {
      const base = {
        cniVersion: "1.0.0",
        name: ctx.pp.netName,
        type: "host-local",
        ipam: { type: "host-local", subnet: ctx.pp.net.subnet, dataDir: join(ctx.dir, "big-ipam") },
        pad: "",
      };
      base.pad = "x".repeat(size - JSON.stringify(base).length);
      return JSON.stringify(base);
    };
    const run = (stdin: string, env: Record<string, string> = {}) =>
      spawnSync(
        "ip",
        [
          "netns",
          "exec",
          ctx.node.name,
          "env",
          "CNI_COMMAND=DEL",
          "CNI_CONTAINERID=big",
          "CNI_IFNAME=eth0",
          `CNI_PATH=${weftBinDir()}`,
          `WEFT_CNI_SOCKET=${ctx.sock}`,
          "WEFT_CNI_SOCKET_DEBUG=1",
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          hostLocal,
        ],
        { input: stdin, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      );
    const big = run(conf(STDIN_LIMIT - 1024));
    assert.is(big.status, 0, big.stdout + big.stderr);
    assert.not.match(big.stderr, NOT_USED, "served");
    assert.is(served(d), 1);

    const tooBig = run(conf(STDIN_LIMIT + 1));
    const local = run(conf(STDIN_LIMIT + 1), { WEFT_CNI_SOCKET: "off" });
    assert.is(local.status, 1);
    assert.match(local.stdout, /error reading from stdin: input exceeds/);
    assert.is(tooBig.status, 1);
    assert.is(tooBig.stdout, local.stdout, "what the plugin prints");
    assert.is(served(d), 1, "not sent");
  },
);

t(
  "a user other than root cannot connect (0600 socket, 0700 directory); the plugin does the work itself",
  async (ctx) => {
    const d = await startDaemon(ctx);
    const st = statSync(ctx.sock);
    assert.ok(st.isSocket());
    assert.is(st.mode & 0o777, 0o600, "socket mode");
    assert.is(st.uid, 0);
    const dir = join(ctx.dir, "run");
    assert.is(statSync(dir).mode & 0o777, 0o700, "directory mode");
    const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    const connectAsNobody = () =>
      spawnSync(
        asNobody[0]!,
        [...asNobody.slice(1), "socat", "-u", "OPEN:/dev/null", `UNIX-CONNECT:${ctx.sock}`],
        {
          encoding: "utf8",
        },
      );
    // The directory alone keeps others out...
    const r1 = connectAsNobody();
    assert.is.not(r1.status, 0);
    assert.match(r1.stderr, /Permission denied/);
    // ...and so does the socket's own mode.
    chmodSync(dir, 0o711);
    try {
      const r2 = connectAsNobody();
      assert.is.not(r2.status, 0);
      assert.match(r2.stderr, /Permission denied/);
    } finally {
      chmodSync(dir, 0o700);
    }
    // The plugin run by another user does not get served: it tries itself (and fails without root).
    const plugin = spawnSync(
      asNobody[0]!,
      [
        ...asNobody.slice(1),
        "env",
        "CNI_COMMAND=DEL",
        "CNI_CONTAINERID=nobody1",
        "CNI_IFNAME=eth0",
        `CNI_PATH=${weftBinDir()}`,
        `WEFT_CNI_SOCKET=${ctx.sock}`,
        "WEFT_CNI_SOCKET_DEBUG=1",
        join(weftBinDir(), "host-local"),
      ],
      {
        input: JSON.stringify({
          cniVersion: "1.0.0",
          name: ctx.pp.netName,
          type: "host-local",
          ipam: { type: "host-local", subnet: ctx.pp.net.subnet, dataDir: ctx.dir },
        }),
        encoding: "utf8",
      },
    );
    assert.match(plugin.stderr, /cni\.sock not used: EACCES/, plugin.stderr);
    assert.is(served(d), 0);
  },
);

t(
  "weftd stopped, killed mid-call and restarted under a stream of ADD/DEL: only error 11, no pod without its address, nothing left",
  async (ctx) => {
    const { pp } = ctx;
    let d = await startDaemon(ctx);
    const outcomes: Array<{
      verb: string;
      pod: string;
      status: number | null;
      code?: unknown;
      local: boolean;
    }> = [];
    const note = (verb: string, pod: Pod, r: CnitoolRun) =>
      outcomes.push({
        verb,
        pod: pod.netns.name,
        status: r.status,
        code: r.json?.code,
        local: NOT_USED.test(r.stderr),
      });
    const capArgs = new Map<Pod, Record<string, unknown>>();
    /** As kubelet and the runtime do: a failed ADD is undone by DEL, then tried again. */
    const runtimeDel = async (pod: Pod) => {
      for (let i = 0; i < 5; i++) {
        const r = await pp.callAsync("del", pod, { capArgs: capArgs.get(pod)! });
        note("DEL", pod, r);
        if (r.status === 0) return;
      }
      throw new Error(`DEL of ${pod.netns.name} kept failing: ${JSON.stringify(outcomes)}`);
    };
    const runtimeAdd = async (pod: Pod): Promise<string> => {
      for (let i = 0; i < 5; i++) {
        const r = await pp.callAsync("add", pod, { capArgs: capArgs.get(pod)! });
        note("ADD", pod, r);
        if (r.status === 0) return addressOf(r);
        await runtimeDel(pod);
      }
      throw new Error(`ADD of ${pod.netns.name} kept failing: ${JSON.stringify(outcomes)}`);
    };
    const newPod = () => {
      const pod = pp.pod("wcss");
      capArgs.set(pod, hostPort(pp.pods.length));
      return pod;
    };

    // 1. Killed mid-call, deterministically: the served ADD waits for host-local's lock, held here.
    const first = newPod();
    const lock = holdIpamLock(pp);
    await until("the test holds the lock", () => !lockIsFree(lock.lockFile));
    const inflight = pp.callAsync("add", first, { capArgs: capArgs.get(first)! });
    await until("the served ADD waits for the lock", () => waitsForLock(d));
    await d.stop("SIGKILL");
    const killed = await inflight;
    assert.is(killed.status, 1, killed.stdout);
    assert.is(killed.json?.code, 11, killed.stdout);
    assert.match(String(killed.json?.msg), /^weftd did not complete the call: /);
    await lock.release();
    await until("the lock is free again (the dead daemon's flock child is gone)", () =>
      lockIsFree(lock.lockFile),
    );
    assert.ok(existsSync(ctx.sock), "a killed weftd leaves its socket file behind");
    // The runtime DELs after the failed ADD: nobody listens on the socket, the client does it itself.
    const del = await pp.callAsync("del", first, { capArgs: capArgs.get(first)! });
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.match(del.stderr, /not used: ECONNREFUSED/);
    assertNothingLeft(ctx);

    // 2. A stream of ADD/DEL while weftd is restarted (replacing the stale socket), stopped, restarted,
    // killed and restarted again.
    d = await startDaemon(ctx);
    const live = new Map<Pod, string>([[first, await runtimeAdd(first)]]);
    let done = false;
    // Three runtimes' workers side by side, so that a stop or a kill finds calls in flight.
    const worker = async () => {
      const mine: Pod[] = [];
      for (let i = 0; i < 6; i++) {
        const pod = newPod();
        mine.push(pod);
        live.set(pod, await runtimeAdd(pod));
        if (i % 2 === 1) {
          const gone = mine[i - 1]!;
          await runtimeDel(gone);
          live.delete(gone);
        }
      }
    };
    const stream = Promise.all([worker(), worker(), worker()]).finally(() => {
      done = true;
    });
    const progress = async (what: string, n: number) => {
      const mark = outcomes.length;
      await until(what, () => done || outcomes.length >= mark + n, 60_000);
    };
    await until("weftd served some of the stream", () => done || served(d) >= 6, 60_000);
    assert.is(await d.stop("SIGTERM"), 0);
    assert.not.ok(existsSync(ctx.sock), "SIGTERM removes the socket file");
    await progress("calls without weftd", 3);
    d = await startDaemon(ctx);
    await until("the new weftd served some", () => done || served(d) >= 4, 60_000);
    await d.stop("SIGKILL");
    await progress("calls after the kill", 3);
    d = await startDaemon(ctx);
    await stream;

    const failures = outcomes.filter((o) => o.status !== 0);
    for (const f of failures) assert.is(f.code, 11, `only "try again later": ${JSON.stringify(f)}`);
    assert.ok(outcomes.some((o) => o.local) && outcomes.some((o) => !o.local), "calls went both ways");
    // Every pod with a result has its address, each its own; nothing else is held.
    const addresses = [...live.values()];
    assert.is(new Set(addresses).size, addresses.length, "distinct addresses");
    for (const [pod, ip] of live) assert.equal(podAddresses(pod), [ip], pod.netns.name);
    assert.equal(pp.reservations().sort(), [...addresses].sort(), "reservations are the live pods'");
    assert.equal(pp.savedConfigs().sort(), [...live.keys()].map((p) => p.containerId).sort());
    assert.is(pp.bridgePorts().length, live.size, "one veth per live pod");

    const before = served(d);
    const dels = await Promise.all(
      [...live.keys()].map((pod) => pp.callAsync("del", pod, { capArgs: capArgs.get(pod)! })),
    );
    for (const r of dels) assertServed(r, "DEL");
    assert.is(served(d), before + 2 * live.size);
    assertNothingLeft(ctx);
    assert.ok(lockIsFree(join(pp.reservationDir, "lock")));
  },
);

t("20 pods ADDed at once through weftd get 20 distinct addresses, then DEL cleanly", async (ctx) => {
  const { pp } = ctx;
  const d = await startDaemon(ctx);
  const pods = Array.from({ length: 20 }, () => pp.pod("wcs20"));
  const adds = await Promise.all(
    pods.map((pod, i) => pp.callAsync("add", pod, { capArgs: hostPort(100 + i) })),
  );
  adds.forEach((r, i) => {
    assertServed(r, `ADD ${i}`);
  });
  assert.is(served(d), 40);
  const addresses = adds.map(addressOf);
  assert.is(new Set(addresses).size, 20, addresses.join(" "));
  pods.forEach((pod, i) => {
    assert.equal(podAddresses(pod), [addresses[i]]);
  });
  assert.equal(pp.reservations().sort(), [...addresses].sort());
  const dels = await Promise.all(
    pods.map((pod, i) => pp.callAsync("del", pod, { capArgs: hostPort(100 + i) })),
  );
  for (const r of dels) assertServed(r, "DEL");
  assert.is(served(d), 80);
  assertNothingLeft(ctx);
});

t(
  "SIGTERM with a call in flight: the call completes, the socket file goes at once, new calls run locally",
  async (ctx) => {
    const { pp } = ctx;
    const d = await startDaemon(ctx);
    const pod = pp.pod("wcst");
    const lock = holdIpamLock(pp);
    await until("the test holds the lock", () => !lockIsFree(lock.lockFile));
    const inflight = pp.callAsync("add", pod);
    await until("the served ADD waits for the lock", () => waitsForLock(d));
    d.child.kill("SIGTERM");
    await until("the socket file is removed", () => !existsSync(ctx.sock));
    // A call meanwhile finds no socket and does the work itself (a DEL of a pod never added: no lock).
    const meanwhile = pp.del(pp.pod("wcst"));
    assert.is(meanwhile.status, 0, meanwhile.stdout);
    assert.match(meanwhile.stderr, /not used: no such socket/);
    assert.is(d.code, undefined, "weftd waits for the call in flight");
    await lock.release();
    const r = await inflight;
    assert.is(r.status, 0, r.stdout + r.stderr);
    // flannel's call was the one in flight and completes in weftd; portmap's, after it, finds no socket.
    assert.is(r.stderr.match(/not used: no such socket/g)?.length, 1, r.stderr);
    assert.equal(podAddresses(pod), [addressOf(r)]);
    assert.is(await d.exited, 0);
    assert.match(
      d.log(),
      new RegExp(`served a CNI call.* plugin=flannel verb=ADD cid=${pod.containerId} exit=0`),
    );
    assert.is(pp.del(pod).status, 0);
    assertNothingLeft(ctx);
  },
);

t.run();
