import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { goToolPath } from "./cnitool.js";
import { fastpathEnv } from "./fastpath.js";
import { pluginRunOf } from "./plugin.js";
import { type Pod, PodPath, type PodPathOptions } from "./podpath.js";

/**
 * The go-cni test client (test/tools/gocni/main.go): built on demand like cnitool (test/tools/build-go.sh)
 * from Debian's golang-github-containerd-go-cni-dev, then run to drive a CNI config directory the way
 * containerd's CRI plugin does: go-cni's Setup/Remove/Check/Status, the loopback network beside the
 * default one, CRI labels in CNI_ARGS, capability args as go-cni's untagged structs (`HostPort`, ...).
 */

/** The gocni binary, built first (test/tools/gocni/build.sh) when missing or out of date. */
export function gocniPath(): string {
  return goToolPath("gocni");
}

export type GocniVerb = "setup" | "remove" | "check" | "status";

/** A CRI port mapping; `protocol` is the CRI enum's name (TCP, UDP, SCTP), empty means TCP. */
export interface CriPortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: "TCP" | "UDP" | "SCTP";
  hostIp?: string;
}

/** The part of a CRI PodSandboxConfig the CRI plugin turns into go-cni options. */
export interface CriPod {
  metadata?: { name?: string; namespace?: string; uid?: string };
  annotations?: Record<string, string>;
  portMappings?: CriPortMapping[];
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  /** bit/s, as the CRI plugin derives them from the kubernetes.io/*-bandwidth annotations. */
  bandwidth?: { ingressRate?: number; egressRate?: number };
  /** Not passed by the CRI plugin; other go-cni callers do (WithCapabilityIPRanges). */
  ipRanges?: Array<{ subnet: string; rangeStart?: string; rangeEnd?: string; gateway?: string }>;
}

export interface GocniOptions {
  /** NETCONFPATH: the conf dir; go-cni loads its first config file (sorted) as the default network. */
  confDir: string;
  /** CNI_PATH: the plugin dirs; they must hold `loopback` too. */
  pluginDirs: string[];
  /** CNI_CACHE_DIR: libcni's result cache, private to the test. */
  cacheDir?: string;
  pod?: CriPod;
  env?: Record<string, string>;
}

/** What `setup` prints (json): the pod IPs as the CRI plugin selects them, go-cni's Result, the raw results. */
export interface GocniSetup {
  podIP: string;
  additionalIPs: string[];
  result: {
    Interfaces: Record<
      string,
      { IPConfigs: Array<{ IP: string; Gateway: string }> | null; Mac: string; Sandbox: string }
    >;
    DNS: unknown[];
    Routes: Array<{ dst: string; gw?: string }>;
  };
  /** One CNI result per network: the loopback network, then the default network. */
  raw: Array<Record<string, unknown>>;
}

export interface GocniRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /**
   * stdout as JSON: a GocniSetup after `setup`, the loaded networks after `status`; on failure
   * {error, and code/msg/details when a plugin returned a CNI error}.
   */
  json: Record<string, unknown> | undefined;
}

/**
 * Runs `gocni <verb> [netns containerId]` and returns its output; never throws for a failed verb.
 * `status` takes no netns or container ID.
 */
export function gocni(
  verb: GocniVerb,
  netns: string | undefined,
  containerId: string | undefined,
  o: GocniOptions,
): GocniRun {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...fastpathEnv(),
    ...o.env,
  };
  for (const k of ["CNI_CACHE_DIR", "GOCNI_POD"]) delete env[k];
  env.NETCONFPATH = o.confDir;
  env.CNI_PATH = o.pluginDirs.join(":");
  if (o.cacheDir) env.CNI_CACHE_DIR = o.cacheDir;
  if (o.pod) env.GOCNI_POD = JSON.stringify(o.pod);
  const argv = verb === "status" ? [verb] : [verb, netns ?? "", containerId ?? ""];
  const r = spawnSync(gocniPath(), argv, { env, encoding: "utf8" });
  return pluginRunOf(r);
}

/**
 * A node whose runtime is containerd: a PodPath (the kube-flannel list, subnet.env, bridge, CNI_PATH with
 * loopback) driven through go-cni. Pods get 64-hex sandbox IDs as containerd's, and the runtime keeps each
 * pod's sandbox config to pass the same options to Remove, as the CRI plugin does.
 *
 *   const node = await CriNode.create({ cniVersion: "1.0.0" });
 *   try {
 *     const pod = node.pod();
 *     const r = node.setupOk(pod, { portMappings: [{ hostPort: 8080, containerPort: 80 }] });
 *     node.remove(pod);
 *   } finally {
 *     node.cleanup();                 // Removes pods still set up, then PodPath.cleanup()
 *   }
 */
export class CriNode {
  private live = new Map<Pod, CriPod>();

  private constructor(readonly pp: PodPath) {}

  static async create(o: PodPathOptions = {}): Promise<CriNode> {
    return new CriNode(await PodPath.create(o));
  }

  /** A pod sandbox: a netns and a random 64-hex sandbox ID, as containerd's. */
  pod(prefix = "wgc"): Pod {
    return this.pp.pod(prefix, randomBytes(32).toString("hex"));
  }

  /** The sandbox config of `pod`: its metadata (name = netns name) and `extra`. */
  criPod(pod: Pod, extra: CriPod = {}): CriPod {
    const metadata = { name: pod.netns.name, namespace: "weft-test", uid: `uid-${pod.netns.name}` };
    return { ...extra, metadata: { ...metadata, ...extra.metadata } };
  }

  private run(verb: GocniVerb, pod: Pod, criPod: CriPod, netnsPath = pod.netns.path): GocniRun {
    return gocni(verb, netnsPath, pod.containerId, this.pp.gocniOptions({ pod: criPod }));
  }

  /** RunPodSandbox's network part: go-cni Setup. The pod counts as set up even when it failed. */
  setup(pod: Pod, extra: CriPod = {}): GocniRun {
    const criPod = this.criPod(pod, extra);
    this.live.set(pod, criPod);
    return this.run("setup", pod, criPod);
  }

  /** Setup that must succeed; returns what the client printed. */
  setupOk(pod: Pod, extra: CriPod = {}): GocniSetup {
    const r = this.setup(pod, extra);
    if (r.status !== 0 || !r.json) throw new Error(`Setup failed (${r.status}): ${r.stdout}${r.stderr}`);
    return r.json as unknown as GocniSetup;
  }

  /**
   * StopPodSandbox's network part: go-cni Remove with the options of the Setup. `netnsPath: ""` is what
   * the CRI plugin passes once the netns is closed.
   */
  remove(pod: Pod, o: { netnsPath?: string } = {}): GocniRun {
    const r = this.run("remove", pod, this.live.get(pod) ?? this.criPod(pod), o.netnsPath);
    if (r.status === 0) this.live.delete(pod);
    return r;
  }

  check(pod: Pod): GocniRun {
    return this.run("check", pod, this.live.get(pod) ?? this.criPod(pod));
  }

  /** go-cni Status (both networks loaded) with this node's conf dir, or another one. */
  status(confDir = this.pp.confDir): GocniRun {
    return gocni("status", undefined, undefined, this.pp.gocniOptions({ confDir }));
  }

  /** libcni's cached result of `pod` on the default network (libcni deletes it on DEL). */
  cachedResultExists(pod: Pod): boolean {
    return existsSync(join(this.pp.cacheDir, "results", `${this.pp.netName}-${pod.containerId}-eth0`));
  }

  /** Removes the pods still set up, then everything the PodPath made. Never throws. */
  cleanup(): void {
    for (const pod of [...this.live.keys()]) {
      try {
        this.remove(pod);
      } catch {
        // keep cleaning
      }
    }
    this.pp.cleanup();
  }
}
