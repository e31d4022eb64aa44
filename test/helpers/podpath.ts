/**
 * The pod path under test: a whole conflist (default conflists/10-flannel.conflist: flannel -> bridge ->
 * host-local, then portmap) driven through the libcni client, as a runtime drives it. Everything it
 * creates is private to one instance: network name, bridge name, v4 (and v6) subnet, subnet.env, flannel
 * dataDir, host-local dataDir, libcni cache, CNI_PATH directory, pods (netns).
 *
 * Usage:
 *   const pp = await PodPath.create({ cniVersion: "1.0.0" });
 *   try {
 *     const pod = pp.pod();                        // a netns
 *     const r = pp.addOk(pod);                     // cnitool add; throws on failure; r is the result
 *     pp.add(pod, { capArgs: { portMappings } })   // or: the raw run (status, stdout, json)
 *     pp.check(pod); pp.del(pod);
 *   } finally {
 *     pp.cleanup();                                // DELs what is still added, removes everything
 *   }
 *
 * Which executables: flannel is always weft's. The delegates (bridge, host-local, portmap) come from a
 * "delegate set": "reference" = Debian's Go plugins in /usr/lib/cni, "weft" = ours. Each of ours is
 * taken from WEFT_BIN_DIR (default dist/bin) when the packaged file is there, else run from the compiled
 * JS next to this file. `delegateSets()` says which sets to test: env WEFT_DELEGATES=reference|weft|both,
 * default both when weft's bridge and host-local implement ADD, else reference only.
 *
 * The same node driven as containerd drives it (go-cni, the loopback network, CRI labels and capability
 * structs): CriNode in test/helpers/gocni.ts, built on gocniOptions().
 */

import { execFileSync, spawnSync } from "node:child_process";
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
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { RECORD_DIR } from "../../plugins/portmap/record.js";
import { formatCidr, networkOf, parseCidr } from "../../shared/net/ipaddr.js";
import { type CnitoolOptions, type CnitoolRun, cnitool, cnitoolAsync, repoRoot } from "./cnitool.js";
import { type CniDaemon, nodeDaemon } from "./fastpath.js";
import type { GocniOptions } from "./gocni.js";
import { uniqueName } from "./names.js";
import { TestNetns } from "./netns.js";

export type DelegateSet = "reference" | "weft";

export const REFERENCE_DIR = "/usr/lib/cni";
const DELEGATES = ["bridge", "host-local", "portmap"] as const;

/** Where weft's packaged executables are: WEFT_BIN_DIR, default <repo>/dist/bin. */
export function weftBinDir(): string {
  return resolve(process.env.WEFT_BIN_DIR ?? join(repoRoot(), "dist", "bin"));
}

/** The compiled multi-call entry next to this helper (<outDir>/cli/multicall.js). */
export function multicallJs(): string {
  return fileURLToPath(new URL("../../cli/multicall.js", import.meta.url));
}

async function implementsAdd(name: string): Promise<boolean> {
  try {
    const { PLUGINS } = (await import(new URL("../../cli/plugins.js", import.meta.url).href)) as {
      PLUGINS: Record<string, () => Promise<{ add?: unknown }>>;
    };
    return typeof (await PLUGINS[name]?.())?.add === "function";
  } catch {
    return false;
  }
}

/** Whether weft implements a delegate yet (its plugin has an ADD); until then the reference stands in. */
export async function weftHas(name: string): Promise<boolean> {
  return implementsAdd(name);
}

/** The delegate sets the integration tests run with (see the module comment). */
export async function delegateSets(): Promise<DelegateSet[]> {
  const want = process.env.WEFT_DELEGATES;
  if (want === "reference" || want === "weft") return [want];
  if (want === "both") return ["reference", "weft"];
  const ready = (await weftHas("bridge")) && (await weftHas("host-local"));
  return ready ? ["reference", "weft"] : ["reference"];
}

/**
 * Puts `name` into `binDir` as weft's executable: a link to the packaged file when WEFT_BIN_DIR has it
 * (unless WEFT_USE_JS=1), else a script running the compiled JS. The script passes the name as argv[0]
 * (`exec -a`), not through WEFT_MULTICALL_NAME, because that variable would be inherited by the delegates
 * the plugin starts and turn them into the same plugin.
 */
export function installWeft(binDir: string, name: string): string {
  const packaged = join(weftBinDir(), name);
  const dest = join(binDir, name);
  if (process.env.WEFT_USE_JS !== "1" && existsSync(packaged)) {
    symlinkSync(packaged, dest);
    return `${packaged} (packaged)`;
  }
  const js = multicallJs();
  if (!existsSync(js)) throw new Error(`no weft ${name}: neither ${packaged} nor ${js} exists`);
  writeFileSync(dest, `#!/bin/bash\nexec -a ${name} "${process.execPath}" "${js}" "$@"\n`, { mode: 0o755 });
  return `${js} (compiled JS)`;
}

export function installReference(binDir: string, name: string): string {
  const src = join(REFERENCE_DIR, name);
  if (!existsSync(src))
    throw new Error(`reference plugin ${src} missing: install containernetworking-plugins`);
  symlinkSync(src, join(binDir, name));
  return src;
}

/**
 * A CNI_PATH directory with weft's flannel and the delegates of `set`, plus the reference `loopback` that
 * go-cni callers (containerd) run for every pod. `omit` leaves plugins out (to inject "plugin not found"
 * failures). Returns the directory and where each executable came from.
 */
export async function makeCniPath(
  dir: string,
  set: DelegateSet,
  omit: readonly string[] = [],
): Promise<{ dir: string; sources: Record<string, string> }> {
  mkdirSync(dir, { recursive: true });
  const sources: Record<string, string> = {};
  if (!omit.includes("flannel")) sources.flannel = installWeft(dir, "flannel");
  for (const name of DELEGATES) {
    if (omit.includes(name)) continue;
    // Our portmap may land later than bridge/host-local; the reference stands in until it does.
    const ours = set === "weft" && (name !== "portmap" || (await weftHas("portmap")));
    sources[name] = ours ? installWeft(dir, name) : installReference(dir, name);
  }
  // weft has no loopback plugin: the reference's always.
  if (!omit.includes("loopback")) sources.loopback = installReference(dir, "loopback");
  return { dir, sources };
}

export interface PodPathOptions {
  /** The list's cniVersion (default: the conflist's own, 0.3.1). */
  cniVersion?: string;
  /** Delegate set (default: the first of delegateSets()). */
  delegates?: DelegateSet;
  /** subnet.env with a v6 block too (default false); `ipv6Only` drops the v4 block. */
  dualStack?: boolean;
  ipv6Only?: boolean;
  /** FLANNEL_MTU (default 1450) and FLANNEL_IPMASQ (default true, so the bridge adds no masquerade). */
  mtu?: number;
  ipMasq?: boolean;
  /** The conflist to start from, relative to the repo (default conflists/10-flannel.conflist). */
  conflist?: string;
  /** Drop the portmap entry (the list "without port mappings"). */
  withoutPortmap?: boolean;
  /** Plugins left out of CNI_PATH. */
  omitPlugins?: string[];
  /** Last word on the list before it is written (e.g. change delegate keys). */
  edit?: (list: ConfList) => void;
  /**
   * A "node" namespace the client runs in (entered with nsenter, /sys not remounted); the bridge and the
   * host veths live there, and the helpers below look there.
   */
  node?: TestNetns;
  /**
   * An existing subnet.env to use as is (a weftd's): none is written, and `net` is read from it
   * (`dualStack`, `ipv6Only`, `mtu` and `ipMasq` do not apply then).
   */
  subnetFile?: string;
  /** Variables every client call gets (e.g. WEFT_CNI_SOCKET of a weftd the test runs); a call's own `env` wins. */
  clientEnv?: Record<string, string>;
}

export interface ConfList {
  name: string;
  cniVersion: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
  [key: string]: unknown;
}

/** A pod: a netns plus the container ID and ifname used for it. */
export interface Pod {
  netns: TestNetns;
  containerId: string;
  ifname: string;
}

export interface PodCallOptions {
  capArgs?: Record<string, unknown>;
  args?: string;
  /** Overrides the netns path passed to libcni (e.g. a wrong path to inject a failure). */
  netnsPath?: string;
  /** Variables for this call's client, over the PodPath's `clientEnv`. */
  env?: Record<string, string>;
}

/** Free 10.N.0.0/16 (N in 100..250) with no route in this namespace overlapping it. */
function pickV4Network(): number {
  const routes = execFileSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" });
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 151);
    if (!new RegExp(`(^|\\s)10\\.${n}\\.`).test(routes)) return n;
  }
  throw new Error("no free 10.N.0.0/16 for a test network");
}

/**
 * Whether `pod` gets an ICMP echo reply from `address` (v4 or v6). A few tries a second apart, because a
 * fresh IPv6 address is unusable until duplicate address detection ends; never a timing assertion.
 */
export function reachable(pod: Pod, address: string, tries = 5): boolean {
  for (let i = 0; i < tries; i++) {
    const r = spawnSync(
      "ip",
      ["netns", "exec", pod.netns.name, "ping", "-n", "-c", "1", "-W", "1", address],
      {
        stdio: "ignore",
      },
    );
    if (r.error) throw new Error(`cannot run ping (install iputils-ping): ${r.error.message}`);
    if (r.status === 0) return true;
  }
  return false;
}

/** The address part of "10.1.2.3/24". */
export function ipOf(cidr: string): string {
  return cidr.split("/")[0]!;
}

type Net = PodPath["net"];

/** A subnet.env for a test network of its own (a free 10.N.0.0/16, one /24 of it), written to `file`. */
function writeTestSubnetEnv(file: string, o: PodPathOptions): Net {
  const n = pickV4Network();
  const m = 1 + Math.floor(Math.random() * 254);
  const hex = (x: number) => x.toString(16);
  const net: Net = { mtu: o.mtu ?? 1450 };
  if (!o.ipv6Only) {
    Object.assign(net, {
      network: `10.${n}.0.0/16`,
      subnet: `10.${n}.${m}.0/24`,
      gateway: `10.${n}.${m}.1`,
    });
  }
  if (o.dualStack || o.ipv6Only) {
    Object.assign(net, {
      ipv6Network: `fd5e:${hex(n)}::/48`,
      ipv6Subnet: `fd5e:${hex(n)}:${hex(m)}::/64`,
      ipv6Gateway: `fd5e:${hex(n)}:${hex(m)}::1`,
    });
  }
  const env = [
    ...(net.network ? [`FLANNEL_NETWORK=${net.network}`, `FLANNEL_SUBNET=${net.gateway}/24`] : []),
    ...(net.ipv6Network
      ? [`FLANNEL_IPV6_NETWORK=${net.ipv6Network}`, `FLANNEL_IPV6_SUBNET=${net.ipv6Gateway}/64`]
      : []),
    `FLANNEL_MTU=${net.mtu}`,
    `FLANNEL_IPMASQ=${o.ipMasq ?? true}`,
  ];
  writeFileSync(file, `${env.join("\n")}\n`);
  return net;
}

/** What a subnet.env says: FLANNEL_NETWORK, FLANNEL_SUBNET (gateway/len), their IPv6 twins, FLANNEL_MTU. */
export function netOfSubnetEnv(text: string): Net {
  const env = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) env.set(line.slice(0, i), line.slice(i + 1));
  }
  const net: Net = { mtu: Number(env.get("FLANNEL_MTU") ?? 1500) };
  const v4 = env.get("FLANNEL_SUBNET");
  if (v4) {
    net.network = env.get("FLANNEL_NETWORK");
    net.subnet = formatCidr(networkOf(parseCidr(v4)));
    net.gateway = ipOf(v4);
  }
  const v6 = env.get("FLANNEL_IPV6_SUBNET");
  if (v6) {
    net.ipv6Network = env.get("FLANNEL_IPV6_NETWORK");
    net.ipv6Subnet = formatCidr(networkOf(parseCidr(v6)));
    net.ipv6Gateway = ipOf(v6);
  }
  return net;
}

export class PodPath {
  readonly pods: Pod[] = [];
  private added = new Set<Pod>();

  private constructor(
    readonly root: string,
    readonly list: ConfList,
    readonly delegates: DelegateSet,
    readonly cniPath: string,
    readonly sources: Record<string, string>,
    readonly node: TestNetns | undefined,
    readonly clientEnv: Record<string, string>,
    readonly net: {
      network?: string;
      subnet?: string;
      gateway?: string;
      ipv6Network?: string;
      ipv6Subnet?: string;
      ipv6Gateway?: string;
      mtu: number;
    },
  ) {}

  static async create(o: PodPathOptions = {}): Promise<PodPath> {
    const root = mkdtempSync(join(tmpdir(), "weft-podpath-"));
    try {
      const delegates = o.delegates ?? (await delegateSets())[0]!;
      const { dir, sources } = await makeCniPath(join(root, "bin"), delegates, o.omitPlugins);
      const subnetFile = o.subnetFile ?? join(root, "subnet.env");
      const net = o.subnetFile
        ? netOfSubnetEnv(readFileSync(o.subnetFile, "utf8"))
        : writeTestSubnetEnv(subnetFile, o);

      const list = JSON.parse(
        readFileSync(join(repoRoot(), o.conflist ?? "conflists/10-flannel.conflist"), "utf8"),
      ) as ConfList;
      list.name = uniqueName("wnet");
      if (o.cniVersion) list.cniVersion = o.cniVersion;
      if (o.withoutPortmap) list.plugins = list.plugins.filter((p) => p.type !== "portmap");
      const flannel = list.plugins.find((p) => p.type === "flannel");
      if (!flannel) throw new Error("the conflist has no flannel entry");
      flannel.subnetFile = subnetFile;
      flannel.dataDir = join(root, "flannel");
      flannel.delegate = { ...(flannel.delegate as object), bridge: uniqueName("wbr") };
      flannel.ipam = { ...(flannel.ipam as object), dataDir: join(root, "ipam") };
      o.edit?.(list);
      mkdirSync(join(root, "net.d"));
      const pp = new PodPath(root, list, delegates, dir, sources, o.node, o.clientEnv ?? {}, net);
      pp.writeList();
      return pp;
    } catch (err) {
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** (Re)writes the conflist file from `list`. */
  writeList(): void {
    writeFileSync(join(this.confDir, `10-${this.list.name}.conflist`), JSON.stringify(this.list, null, 2));
  }

  /**
   * Changes the list's cniVersion in place. Debian's libcni (v1.1.2) cannot read 1.1.0 results, so
   * tests ADD at 1.0.0 and switch to 1.1.0 only for GC and STATUS, which return no result.
   */
  setCniVersion(version: string): void {
    this.list.cniVersion = version;
    this.writeList();
  }

  get netName(): string {
    return this.list.name;
  }
  get flannelConf(): Record<string, unknown> {
    return this.list.plugins.find((p) => p.type === "flannel")!;
  }
  /** The bridge's name (the delegate's `bridge` key). */
  get bridge(): string {
    return (this.flannelConf.delegate as { bridge: string }).bridge;
  }
  get subnetEnvFile(): string {
    return this.flannelConf.subnetFile as string;
  }
  get flannelDataDir(): string {
    return join(this.root, "flannel");
  }
  /** host-local's directory for this network: one file per reserved IP. */
  get reservationDir(): string {
    return join(this.root, "ipam", this.netName);
  }
  get confDir(): string {
    return join(this.root, "net.d");
  }
  get cacheDir(): string {
    return join(this.root, "cache");
  }

  /** A new pod (netns); removed by cleanup(). The container ID defaults to weft-<netns name>. */
  pod(prefix = "wpp", containerId?: string): Pod {
    const netns = TestNetns.create(prefix);
    const pod = { netns, containerId: containerId ?? `weft-${netns.name}`, ifname: "eth0" };
    this.pods.push(pod);
    return pod;
  }

  /** The options for a raw cnitool call on this network (for verbs and cases the helpers do not cover). */
  toolOptions(extra: Partial<CnitoolOptions> = {}): CnitoolOptions {
    return {
      confDir: this.confDir,
      cniPath: this.cniPath,
      cacheDir: this.cacheDir,
      ...(this.node ? { clientNetns: this.node.path } : {}),
      ...extra,
      env: {
        ...(this.daemon ? { WEFT_CNI_SOCKET: this.daemon.socket, WEFT_CNI_SOCKET_DEBUG: "1" } : {}),
        ...this.clientEnv,
        ...extra.env,
      },
    };
  }

  /** The node namespace's weftd serving the calls (WEFT_TEST_FASTPATH=1), started on first use. */
  private get daemon(): CniDaemon | undefined {
    if (this.node && this.nodeCniDaemon === undefined)
      this.nodeCniDaemon = nodeDaemon(this.node.name) ?? null;
    return this.nodeCniDaemon ?? undefined;
  }
  private nodeCniDaemon: CniDaemon | null | undefined;

  /**
   * The options for a go-cni run (test/helpers/gocni) on this node: the conf dir holds only this list, so
   * go-cni's default network is it; CNI_PATH holds loopback too.
   */
  gocniOptions(extra: Partial<GocniOptions> = {}): GocniOptions {
    return { confDir: this.confDir, pluginDirs: [this.cniPath], cacheDir: this.cacheDir, ...extra };
  }

  /** Puts weft's or the reference's `name` into CNI_PATH in place of the current one. */
  usePlugin(name: string, which: DelegateSet): string {
    rmSync(join(this.cniPath, name), { force: true });
    this.sources[name] =
      which === "weft" ? installWeft(this.cniPath, name) : installReference(this.cniPath, name);
    return this.sources[name]!;
  }

  private callOptions(pod: Pod, o: PodCallOptions): CnitoolOptions {
    return this.toolOptions({
      containerId: pod.containerId,
      ifname: pod.ifname,
      ...(o.capArgs ? { capArgs: o.capArgs } : {}),
      ...(o.args ? { args: o.args } : {}),
      ...(o.env ? { env: o.env } : {}),
    });
  }

  private call(verb: "add" | "check" | "del", pod: Pod, o: PodCallOptions): CnitoolRun {
    return cnitool(verb, this.netName, o.netnsPath ?? pod.netns.path, this.callOptions(pod, o));
  }

  /** add/check/del without blocking this process (calls side by side, or while the test acts). */
  async callAsync(verb: "add" | "check" | "del", pod: Pod, o: PodCallOptions = {}): Promise<CnitoolRun> {
    if (verb === "add") this.added.add(pod);
    const r = await cnitoolAsync(verb, this.netName, o.netnsPath ?? pod.netns.path, this.callOptions(pod, o));
    if (verb === "del" && r.status === 0) this.added.delete(pod);
    return r;
  }

  add(pod: Pod, o: PodCallOptions = {}): CnitoolRun {
    this.added.add(pod);
    return this.call("add", pod, o);
  }

  /** ADD that must succeed; returns the result document. */
  addOk(pod: Pod, o: PodCallOptions = {}): Record<string, unknown> {
    const r = this.add(pod, o);
    if (r.status !== 0 || !r.json) throw new Error(`ADD failed (${r.status}): ${r.stdout}${r.stderr}`);
    return r.json;
  }

  check(pod: Pod, o: PodCallOptions = {}): CnitoolRun {
    return this.call("check", pod, o);
  }

  del(pod: Pod, o: PodCallOptions = {}): CnitoolRun {
    const r = this.call("del", pod, o);
    if (r.status === 0) this.added.delete(pod);
    return r;
  }

  /** Reserved addresses in host-local's directory (not its lock and last_reserved_ip files). */
  reservations(): string[] {
    try {
      return readdirSync(this.reservationDir).filter(
        (f) => !f.startsWith("last_reserved_ip") && f !== "lock",
      );
    } catch {
      return [];
    }
  }

  /** Container IDs with a saved flannel delegate config. */
  savedConfigs(): string[] {
    try {
      return readdirSync(this.flannelDataDir);
    } catch {
      return [];
    }
  }

  /** Names of the links attached to this network's bridge (the pods' host-side veths). */
  bridgePorts(): string[] {
    try {
      const out = execFileSync("ip", [...this.nodeArgs, "-j", "link", "show", "master", this.bridge], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
      return (JSON.parse(out || "[]") as Array<{ ifname: string }>).map((l) => l.ifname);
    } catch {
      return [];
    }
  }

  /** `ip` options that address the namespace the bridge lives in. */
  get nodeArgs(): string[] {
    return this.node ? ["-n", this.node.name] : [];
  }

  bridgeExists(): boolean {
    try {
      execFileSync("ip", [...this.nodeArgs, "link", "show", "dev", this.bridge], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  }

  /** DEL for every pod still added (ADD attempted, no successful DEL since). Never throws. */
  delAdded(o: PodCallOptions = {}): void {
    for (const pod of [...this.added]) {
      try {
        this.del(pod, o);
      } catch {
        // keep going
      }
    }
  }

  /**
   * Deletes everything: DEL for pods still added, the netns, the bridge, the temp dirs. Never throws.
   * `del: false` skips the DELs, for a node whose namespace (bridge, veths, rules) is removed anyway.
   */
  cleanup(o: { del?: boolean } = {}): void {
    if (o.del !== false) this.delAdded();
    for (const pod of this.pods) pod.netns.delete();
    this.nodeCniDaemon?.stop();
    try {
      execFileSync("ip", [...this.nodeArgs, "link", "del", this.bridge], { stdio: "ignore" });
    } catch {
      // never created, or already gone
    }
    rmSync(this.root, { recursive: true, force: true });
    // weft's portmap records (plugins/portmap/record.ts) of pods not DELeted (a node netns deleted whole).
    rmSync(join(RECORD_DIR, this.netName), { recursive: true, force: true });
  }
}
