import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { type EtcdDoor, TestEtcd, type TestEtcdOptions } from "./etcd.js";
import { assertRoot } from "./netns.js";
import { type DelegateSet, ipOf, type Pod, PodPath, weftBinDir } from "./podpath.js";
import { Underlay, type UnderlayNode, type UnderlayOptions } from "./underlay.js";
import { until, Weftd } from "./weftd.js";

/**
 * A cluster of weft nodes on one machine, end to end: N nodes on an underlay bridge
 * (test/helpers/underlay.ts), `weftd` (the packaged dist/bin/weftd by default) running in each node's
 * namespace with the real backends, and per node a pod path (test/helpers/podpath.ts): the kube-flannel
 * list driven through the libcni client inside the node (`nsenter --net=`), reading the subnet.env that
 * node's weftd wrote, with the bridge named `cni0` as on a flannel node.
 *
 *   const c = await Cluster.create({ nodes: 3, netConf: { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } } });
 *   try {
 *     await c.startAll();                          // every daemon, then every /readyz 200
 *     const pod = await c.nodes[0]!.addPod();      // ADD through libcni; pod.ip is its address
 *     await c.unreachablePairs();                  // [] when every pod pings every pod on the other nodes
 *     await c.nodes[1]!.restart();                 // SIGTERM, start again, wait for /readyz
 *   } finally {
 *     await c.cleanup();                           // daemons killed, pods, namespaces, temp dirs removed
 *   }
 *
 * The store is a parameter (`store`): the embedded file store in a temp directory by default, or etcd
 * (endpoints, prefix, TLS files, plus a LeaseAccess the test supplies to read and delete leases), given
 * as is or made from the underlay once it exists: the daemons run in the node namespaces, so an etcd
 * endpoint must be reachable from there (in `underlay.hub` on `<subnet24>.254`, not the host's
 * 127.0.0.1). `hubEtcd()` does that: a throwaway etcd there, TLS optional, `cluster.etcd` to kill,
 * restart or query it.
 *
 *   const c = await Cluster.create({ nodes: 3, store: hubEtcd({ tls: true, config: netConf }) });
 *
 * Everything is flanneld's defaults except what a node on one machine needs: --iface eth0,
 * --subnet-file per node, --net-config-path (one file for the cluster, or one per node; none when
 * `netConf` is not given: the store's config), --ip-masq (default on), /readyz on
 * 127.0.0.1:<healthPort> inside each node.
 */

export interface StoredLease {
  /** flanneld's subnet key: `10.244.3.0-24`. */
  key: string;
  /** The lease value (flanneld's JSON; the file store adds `Expiration`). */
  value: Record<string, unknown> & { PublicIP?: string };
}

/** How a test reads and edits the leases of the cluster's store, whatever the store is. */
export interface LeaseAccess {
  /** Every lease, keyed by the subnet key alone (etcd: without `<prefix>/subnets/`), sorted by key. */
  list(): Promise<StoredLease[]>;
  /** Deletes a lease by hand, as an operator would (`rm`, `etcdctl del`). */
  remove(key: string): Promise<void>;
}

export type ClusterStore =
  | {
      kind: "file";
      /** The shared directory (default: a temp directory of the cluster's). */
      dir?: string;
    }
  | {
      kind: "etcd";
      endpoints: string[];
      /** --etcd-prefix (default flanneld's /coreos.com/network). */
      prefix?: string;
      caFile?: string;
      certFile?: string;
      keyFile?: string;
      /** Reads and deletes keys under <prefix>/subnets/ (e.g. through TestEtcd.getPrefix and etcdctl). */
      leases: LeaseAccess;
      /** Stops what serves the store; called by cleanup() after the daemons, before the namespaces go. */
      close?: () => Promise<void>;
      /** The etcd serving it, when the test started one (hubEtcd()): for kills, restarts, etcdctl. */
      etcd?: TestEtcd;
    };

/**
 * The store, or how to make it once the underlay exists: an etcd the daemons reach must listen where
 * the node namespaces can connect, e.g. in `underlay.hub` on `${underlay.subnet24}.254` (the host's
 * 127.0.0.1 is not theirs).
 */
export type ClusterStoreOption =
  | ClusterStore
  | ((underlay: Underlay) => ClusterStore | Promise<ClusterStore>);

export interface ClusterOptions {
  nodes: number;
  /**
   * net-conf.json: a document or its text, given to every node with --net-config-path. Without it no
   * node gets the flag, and weftd reads the store's network config (etcd: `<prefix>/config`).
   */
  netConf?: Record<string, unknown> | string;
  store?: ClusterStoreOption;
  /** --ip-masq (default true, as kube-flannel runs flanneld). */
  ipMasq?: boolean;
  /** Extra weftd flags for every node. */
  args?: string[];
  /** Extra environment for every node's weftd (e.g. WEFT_ROUTE_RESYNC_SECONDS). */
  env?: Record<string, string>;
  /** The weftd executable (default <WEFT_BIN_DIR or dist/bin>/weftd). */
  exe?: string;
  /** The pods' delegates (default "weft": the whole weft chain, flannel -> bridge -> host-local). */
  delegates?: DelegateSet;
  /** Port of /readyz inside each node (default 9100). */
  healthPort?: number;
  underlay?: UnderlayOptions;
}

export interface ClusterPod {
  node: ClusterNode;
  pod: Pod;
  /** Its IPv4 address from the ADD result. */
  ip: string;
  /** The node's name and the pod's address, for messages. */
  label: string;
}

export interface StartOptions {
  /** Flags added for this start only. */
  args?: string[];
  /** A net-conf for this node only (written next to its subnet.env), from this start on. */
  netConf?: Record<string, unknown> | string;
}

const run = promisify(execFile);
const live = new Set<Cluster>();
process.on("exit", () => {
  // A test that died mid-way must not leave daemons behind (the namespaces go with the next cleanup).
  for (const c of live) for (const n of c.nodes) n.daemon?.child.kill("SIGKILL");
});

/** The packaged weftd (WEFT_BIN_DIR, default dist/bin). */
export function packagedWeftd(): string {
  const exe = resolve(weftBinDir(), "weftd");
  if (!existsSync(exe)) throw new Error(`${exe} is missing: run npm run build`);
  return exe;
}

const textOf = (doc: Record<string, unknown> | string) =>
  typeof doc === "string" ? doc : JSON.stringify(doc);

/** The file store's leases, read as a test (or an operator) sees them. */
export function fileLeaseAccess(dir: string): LeaseAccess {
  return {
    async list() {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return [];
      }
      const out: StoredLease[] = [];
      for (const key of names.sort()) {
        if (key.startsWith(".") || key === "config") continue;
        try {
          out.push({ key, value: JSON.parse(readFileSync(join(dir, key), "utf8")) });
        } catch {
          // gone meanwhile, or not a lease
        }
      }
      return out;
    },
    async remove(key) {
      await rm(join(dir, key));
    },
  };
}

/** The leases under `<prefix>/subnets/` of an etcd, read and deleted with etcdctl as an operator would. */
export function etcdLeaseAccess(etcd: TestEtcd, prefix = DEFAULT_ETCD_PREFIX): LeaseAccess {
  const subnets = `${prefix.replace(/\/+$/, "")}/subnets/`;
  return {
    async list() {
      return (await etcd.getPrefix(subnets))
        .map((kv) => ({ key: kv.key.slice(subnets.length), value: JSON.parse(kv.value) }))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    async remove(key) {
      const out = await etcd.etcdctl(["del", `${subnets}${key}`]);
      if (out.trim() !== "1")
        throw new Error(`etcdctl del ${subnets}${key} deleted ${out.trim() || "nothing"}`);
    },
  };
}

/** flanneld's --etcd-prefix default. */
export const DEFAULT_ETCD_PREFIX = "/coreos.com/network";

export interface HubEtcdOptions extends Pick<TestEtcdOptions, "tls" | "args"> {
  /** --etcd-prefix for the nodes (default: none given, flanneld's /coreos.com/network). */
  prefix?: string;
  /** A network config written to `<prefix>/config` before any node starts (a document or its text). */
  config?: Record<string, unknown> | string;
  /** Make etcd but do not start it: the nodes find it unreachable until `cluster.etcd.restart()`. */
  stopped?: boolean;
}

/**
 * The cluster's store on a real etcd, started in the underlay's hub namespace on `<subnet24>.254:2379`
 * (where every node reaches it over its eth0, as nodes reach an etcd on their network), with TLS client
 * certificates when `tls` is set (the nodes get --etcd-cafile/--etcd-certfile/--etcd-keyfile). Its data
 * and certificates go with cleanup(); `cluster.etcd` is the TestEtcd.
 */
export function hubEtcd(o: HubEtcdOptions = {}): (u: Underlay) => Promise<ClusterStore> {
  return async (u) => {
    const etcd = await TestEtcd.create({
      netns: u.hub.name,
      host: `${u.subnet24}.254`,
      ...(o.tls ? { tls: true } : {}),
      ...(o.args ? { args: o.args } : {}),
    });
    try {
      if (!o.stopped || o.config !== undefined) await etcd.restart();
      const prefix = o.prefix ?? DEFAULT_ETCD_PREFIX;
      if (o.config !== undefined) await etcd.put(`${prefix.replace(/\/+$/, "")}/config`, textOf(o.config));
      if (o.stopped) await etcd.kill();
      const tls = etcd.tls;
      return {
        kind: "etcd",
        endpoints: [etcd.endpoint],
        ...(o.prefix ? { prefix: o.prefix } : {}),
        ...(tls ? { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } : {}),
        leases: etcdLeaseAccess(etcd, prefix),
        close: () => etcd.stop(),
        etcd,
      };
    } catch (err) {
      await etcd.stop();
      throw err;
    }
  };
}

export class ClusterNode {
  daemon: Weftd | undefined;
  readonly pods: ClusterPod[] = [];
  private pp: PodPath | undefined;
  private netConfFile: string | undefined;
  /** The daemons this node ran (the current one last). */
  readonly runs: Weftd[] = [];

  constructor(
    readonly cluster: Cluster,
    readonly underlay: UnderlayNode,
  ) {
    mkdirSync(this.dir, { recursive: true });
  }

  get name(): string {
    return this.underlay.netns.name;
  }
  /** The node's public IP (its eth0 address on the underlay). */
  get ip(): string {
    return this.underlay.ip;
  }
  get dir(): string {
    return join(this.cluster.root, this.name);
  }
  get subnetFile(): string {
    return join(this.dir, "subnet.env");
  }
  /** Every run's log, appended. */
  get logFile(): string {
    return join(this.dir, "weftd.log");
  }

  /** Where this node's weftd serves the plugins' calls (WEFT_CNI_SOCKET for its pods' plugins). */
  get cniSocket(): string {
    return join(this.dir, "cni.sock");
  }

  /** Starts weftd in the node (it must not be running). Does not wait for /readyz. */
  start(o: StartOptions = {}): Weftd {
    if (this.running) throw new Error(`${this.name}: weftd is already running`);
    if (o.netConf !== undefined) {
      this.netConfFile = join(this.dir, "net-conf.json");
      writeFileSync(this.netConfFile, textOf(o.netConf));
    }
    const c = this.cluster;
    const netConf = this.netConfFile ?? c.netConfFile;
    const d = new Weftd({
      node: this.underlay,
      exe: c.exe,
      logFile: this.logFile,
      ...(c.env ? { env: c.env } : {}),
      args: [
        ...c.storeArgs(),
        `--subnet-file=${this.subnetFile}`,
        ...(netConf ? [`--net-config-path=${netConf}`] : []),
        `--iface=${this.underlay.iface}`,
        ...(c.ipMasq ? ["--ip-masq"] : []),
        "--healthz-ip=127.0.0.1",
        `--healthz-port=${c.healthPort}`,
        // Each node serves its plugins' calls on a socket of its own (the default path is the host's).
        `--cni-socket=${this.cniSocket}`,
        ...c.args,
        ...(o.args ?? []),
      ],
    });
    this.daemon = d;
    this.runs.push(d);
    return d;
  }

  get running(): boolean {
    const d = this.daemon;
    return !!d && d.code === undefined;
  }

  /** GET /readyz inside the node: status (0 when nothing answers) and body. */
  async readyz(): Promise<{ status: number; body: string }> {
    try {
      const { stdout } = await run("ip", [
        "netns",
        "exec",
        this.name,
        "curl",
        "-s",
        "-m",
        "2",
        "-w",
        "\n%{http_code}",
        `http://127.0.0.1:${this.cluster.healthPort}/readyz`,
      ]);
      const i = stdout.lastIndexOf("\n");
      return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i).trim() };
    } catch (err) {
      const out = (err as { stdout?: string }).stdout ?? "";
      return { status: Number(out.slice(out.lastIndexOf("\n") + 1)) || 0, body: "" };
    }
  }

  /** Waits until /readyz is 200; fails early, with the log, if the daemon exits. */
  async ready(ms = 20_000): Promise<void> {
    await until(
      `${this.name} ready`,
      async () => {
        if (this.daemon?.code !== undefined)
          throw new Error(`${this.name}: weftd exited with ${this.daemon.code}:\n${this.log()}`);
        return (await this.readyz()).status === 200;
      },
      ms,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${this.name} log:\n${this.log()}`, { cause: err });
    });
  }

  /** Stops the daemon (SIGTERM by default: lease, routes and subnet.env stay) and returns its status. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null | undefined> {
    const d = this.daemon;
    if (!d) return undefined;
    return d.stop(signal);
  }

  kill(): Promise<number | null | undefined> {
    return this.stop("SIGKILL");
  }

  /** Stops (SIGTERM, or `signal`) and starts again, then waits for /readyz. */
  async restart(signal: NodeJS.Signals = "SIGTERM", o: StartOptions = {}): Promise<void> {
    await this.stop(signal);
    this.start(o);
    await this.ready();
  }

  /** The log of every run so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** Whether a log line holds `text` (the logger prints the message as a JSON string: quotes escaped). */
  logged(text: string): boolean {
    return this.log().includes(JSON.stringify(text).slice(1, -1));
  }

  /** subnet.env as written by the daemon, or undefined when there is none. */
  subnetEnvText(): string | undefined {
    try {
      return readFileSync(this.subnetFile, "utf8");
    } catch {
      return undefined;
    }
  }

  /** The node's pod subnet from subnet.env, as a network ("10.244.3.0/24"). */
  subnet(): string {
    const text = this.subnetEnvText();
    const m = text && /^FLANNEL_SUBNET=(\d+\.\d+\.\d+\.)(\d+)\/(\d+)$/m.exec(text);
    if (!m) throw new Error(`${this.name}: no FLANNEL_SUBNET in ${this.subnetFile}`);
    return `${m[1]}${Number(m[2]) - 1}/${m[3]}`;
  }

  /** The node's lease in the store (by its public IP). */
  async lease(): Promise<StoredLease | undefined> {
    return (await this.cluster.leases()).find((l) => l.value.PublicIP === this.ip);
  }

  /** The node's pod path, made on first use from the subnet.env its daemon wrote. */
  async podPath(): Promise<PodPath> {
    if (!this.pp) {
      if (!existsSync(this.subnetFile)) throw new Error(`${this.name}: no subnet.env yet`);
      this.pp = await PodPath.create({
        node: this.underlay.netns,
        subnetFile: this.subnetFile,
        delegates: this.cluster.delegates,
        edit: (list) => {
          const flannel = list.plugins.find((p) => p.type === "flannel")!;
          flannel.delegate = { ...(flannel.delegate as object), bridge: "cni0" };
        },
      });
    }
    return this.pp;
  }

  /** A pod on this node, added through libcni with the kube-flannel list. */
  async addPod(): Promise<ClusterPod> {
    const pp = await this.podPath();
    const pod = pp.pod("wcp");
    const result = pp.addOk(pod) as { ips?: Array<{ address: string }> };
    const address = result.ips?.[0]?.address;
    if (!address) throw new Error(`${this.name}: ADD gave no address: ${JSON.stringify(result)}`);
    const p: ClusterPod = { node: this, pod, ip: ipOf(address), label: `${this.name}/${ipOf(address)}` };
    this.pods.push(p);
    return p;
  }

  /** A command's stdout inside the node. */
  async exec(cmd: string[]): Promise<string> {
    return (await run("ip", ["netns", "exec", this.name, ...cmd], { maxBuffer: 1 << 24 })).stdout;
  }

  /** `ip <args>` inside the node, as trimmed lines. */
  async ipLines(args: string[]): Promise<string[]> {
    return (await this.exec(["ip", ...args]))
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** `ip -j <args>` inside the node, parsed. */
  async ipJson<T>(args: string[]): Promise<T> {
    return JSON.parse((await this.exec(["ip", "-j", ...args])) || "[]") as T;
  }

  /** Removes what the node holds outside its namespace: the pods and the pod path's temp dir. */
  discard(): void {
    this.pp?.cleanup({ del: false });
    this.pp = undefined;
  }
}

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  /** The cluster's net-conf.json, or undefined when the nodes read the store's. */
  readonly netConfFile: string | undefined;
  readonly leaseAccess: LeaseAccess;
  readonly exe: string;
  readonly env: Record<string, string> | undefined;
  readonly ipMasq: boolean;
  readonly args: string[];
  readonly delegates: DelegateSet;
  readonly healthPort: number;
  private readonly store: ClusterStore;
  /** Processes a test started in the cluster's pods (pingDuring), ended by cleanup() if still running. */
  readonly background = new Set<ChildProcess>();

  private constructor(
    readonly root: string,
    readonly underlay: Underlay,
    o: ClusterOptions,
    store: ClusterStore,
  ) {
    if (o.netConf !== undefined) {
      this.netConfFile = join(root, "net-conf.json");
      writeFileSync(this.netConfFile, textOf(o.netConf));
    }
    this.store = store;
    if (this.store.kind === "file") {
      this.store = { kind: "file", dir: this.store.dir ?? join(root, "leases") };
      this.leaseAccess = fileLeaseAccess(this.store.dir!);
    } else {
      this.leaseAccess = this.store.leases;
    }
    this.exe = o.exe ?? packagedWeftd();
    this.env = o.env;
    this.ipMasq = o.ipMasq ?? true;
    this.args = o.args ?? [];
    this.delegates = o.delegates ?? "weft";
    this.healthPort = o.healthPort ?? 9100;
  }

  /** The underlay and the nodes (no daemon started yet). */
  static async create(o: ClusterOptions): Promise<Cluster> {
    assertRoot();
    // Fail before creating anything when the executables are not built.
    if (!o.exe) packagedWeftd();
    const root = mkdtempSync(join(tmpdir(), "weft-cluster-"));
    let underlay: Underlay | undefined;
    try {
      underlay = Underlay.create(o.nodes, o.underlay);
      const store = typeof o.store === "function" ? await o.store(underlay) : (o.store ?? { kind: "file" });
      const c = new Cluster(root, underlay, o, store);
      live.add(c);
      for (const n of underlay.nodes) c.nodes.push(new ClusterNode(c, n));
      return c;
    } catch (err) {
      underlay?.destroy();
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** weftd's store flags for this cluster's store. */
  storeArgs(): string[] {
    const s = this.store;
    if (s.kind === "file") return ["--store=file", `--store-dir=${s.dir}`];
    return [
      "--store=etcd",
      `--etcd-endpoints=${s.endpoints.join(",")}`,
      ...(s.prefix ? [`--etcd-prefix=${s.prefix}`] : []),
      ...(s.caFile ? [`--etcd-cafile=${s.caFile}`] : []),
      ...(s.certFile ? [`--etcd-certfile=${s.certFile}`] : []),
      ...(s.keyFile ? [`--etcd-keyfile=${s.keyFile}`] : []),
    ];
  }

  get storeKind(): ClusterStore["kind"] {
    return this.store.kind;
  }

  /** The file store's directory (file store only). */
  get storeDir(): string {
    if (this.store.kind !== "file") throw new Error("the cluster's store is not a file store");
    return this.store.dir!;
  }

  /** The etcd the cluster's store runs on (a store made by hubEtcd()). */
  get etcd(): TestEtcd {
    const s = this.store;
    if (s.kind !== "etcd" || !s.etcd)
      throw new Error("the cluster's store is not an etcd started by the test");
    return s.etcd;
  }

  /**
   * A slow way in to the cluster's etcd (TestEtcd.door()): flags that point a node at it, to pass to
   * start({ args }), and setDelay(0) to open it. It goes with cleanup().
   */
  async etcdDoor(delayMs: number): Promise<EtcdDoor & { args: string[] }> {
    const door = await this.etcd.door(delayMs);
    return { ...door, args: [`--etcd-endpoints=${door.endpoint}`] };
  }

  /** One more node on the underlay (a joining node); its daemon is not started. */
  addNode(): ClusterNode {
    const n = new ClusterNode(this, this.underlay.addNode());
    this.nodes.push(n);
    return n;
  }

  /** Starts every node not running (all at once), then waits until each answers /readyz 200. */
  async startAll(nodes: ClusterNode[] = this.nodes): Promise<void> {
    for (const n of nodes) if (!n.running) n.start();
    await Promise.all(nodes.map((n) => n.ready()));
  }

  leases(): Promise<StoredLease[]> {
    return this.leaseAccess.list();
  }

  pods(): ClusterPod[] {
    return this.nodes.flatMap((n) => n.pods);
  }

  /**
   * Every pod pings every pod on the other nodes (a few tries each, in parallel); returns the pairs that
   * got no answer ("<from> -> <to>"), so an assertion shows exactly which.
   */
  async unreachablePairs(pods: ClusterPod[] = this.pods()): Promise<string[]> {
    const pairs = pods.flatMap((a) => pods.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
    const bad = await Promise.all(
      pairs.map(async ([a, b]) => ((await pingOk(a, b.ip)) ? undefined : `${a.label} -> ${b.label}`)),
    );
    return bad.filter((x): x is string => x !== undefined);
  }

  /** Kills every daemon and removes the pods, the namespaces and the temp dirs. Never throws. */
  async cleanup(): Promise<void> {
    live.delete(this);
    // A test that failed before stopping its pings would otherwise keep the test process alive.
    for (const p of this.background) p.kill("SIGKILL");
    await Promise.all(this.nodes.map((n) => n.kill().catch(() => undefined)));
    if (this.store.kind === "etcd") await this.store.close?.().catch(() => undefined);
    for (const n of this.nodes) {
      try {
        n.discard();
      } catch {
        // keep cleaning
      }
    }
    this.underlay.destroy();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Whether `from` gets an echo reply from `ip` within `tries` one-second tries. */
export async function pingOk(from: ClusterPod, ip: string, tries = 3): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      await run("ip", ["netns", "exec", from.pod.netns.name, "ping", "-n", "-q", "-c", "1", "-W", "1", ip]);
      return true;
    } catch {
      // no answer in a second
    }
  }
  return false;
}

/**
 * A ping running in the background from a pod (every `intervalMs`), for traffic during a change:
 * `stop()` ends it and returns how many echoes went out and came back.
 */
export function pingDuring(
  from: ClusterPod,
  ip: string,
  intervalMs = 20,
): { stop(): Promise<{ sent: number; received: number }> } {
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      from.pod.netns.name,
      "ping",
      "-n",
      "-q",
      "-i",
      String(intervalMs / 1000),
      "-W",
      "1",
      ip,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const background = from.node.cluster.background;
  background.add(child);
  const exited = new Promise<string>((r) =>
    child.on("close", (code, signal) => {
      background.delete(child);
      r(`${code} ${signal}`);
    }),
  );
  return {
    async stop() {
      child.kill("SIGINT");
      const how = await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      if (!m) throw new Error(`ping printed no summary (exit ${how}): ${out}`);
      return { sent: Number(m[1]), received: Number(m[2]) };
    },
  };
}

/**
 * The time from now until `from` first gets an echo reply from `ip` (pinging every `intervalMs`, up to
 * `deadlineMs`), in ms; rejects when no reply came.
 */
export async function firstReply(
  from: ClusterPod,
  ip: string,
  intervalMs = 10,
  deadlineMs = 10_000,
): Promise<number> {
  const t0 = performance.now();
  // -c 1 with -w: ping keeps sending until one reply comes back or the deadline passes.
  await run("ip", [
    "netns",
    "exec",
    from.pod.netns.name,
    "ping",
    "-n",
    "-q",
    "-c",
    "1",
    "-i",
    String(intervalMs / 1000),
    "-w",
    String(Math.ceil(deadlineMs / 1000)),
    ip,
  ]).catch((err: Error) => {
    throw new Error(`${from.label} got no reply from ${ip} in ${deadlineMs} ms`, { cause: err });
  });
  return performance.now() - t0;
}
