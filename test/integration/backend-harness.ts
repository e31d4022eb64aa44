import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExternalInterface } from "../../daemon/backend/backend.js";
import { findExternalInterface } from "../../daemon/external-iface.js";
import type { Lease } from "../../daemon/lease.js";
import type { BackendConfig, NetworkConfig } from "../../daemon/net-conf.js";
import { Logger } from "../../shared/log.js";
import { uniqueName } from "../helpers/names.js";
import { TestNetns } from "../helpers/netns.js";
import type { Underlay, UnderlayNode } from "../helpers/underlay.js";

/**
 * What the backend tests share: a network config as net-conf.ts would hand it over, hand-made leases
 * (no store, no daemon), a pod-like address behind each node (a `cni0` bridge with `<subnet>.1/24` and a
 * pod namespace on it at `<subnet>.2`), and a logger whose lines the test can read.
 */

export function netConfig(
  backend: Partial<BackendConfig> & Pick<BackendConfig, "type">,
  over: Partial<NetworkConfig> = {},
): NetworkConfig {
  return {
    enableIPv4: true,
    enableIPv6: false,
    network: "10.244.0.0/16",
    subnetLen: 24,
    ipv6SubnetLen: 64,
    backend: { vni: 1, port: 0, directRouting: false, mtu: 0, ...backend },
    raw: "{}",
    ...over,
  };
}

export interface LeaseOpts {
  type: "vxlan" | "host-gw";
  mac?: string;
  vni?: number;
  ipv6Subnet?: string;
  publicIpv6?: string;
  mac6?: string;
}

/** Node i's lease as flanneld would store it: subnet 10.244.<i+1>.0/24, public IP its underlay address. */
export function leaseOf(subnet: string, publicIp: string, o: LeaseOpts): Lease {
  const lease: Lease = {
    subnet,
    attrs: { PublicIP: publicIp, PublicIPv6: o.publicIpv6 ?? null, BackendType: o.type },
  };
  if (o.mac) lease.attrs.BackendData = { VNI: o.vni ?? 1, VtepMAC: o.mac };
  if (o.ipv6Subnet) lease.ipv6Subnet = o.ipv6Subnet;
  if (o.mac6) lease.attrs.BackendV6Data = { VNI: o.vni ?? 1, VtepMAC: o.mac6 };
  return lease;
}

/** A logger writing every line (debug and up) to a temp file; `lines()` reads them back. */
export class TestLog {
  readonly dir = mkdtempSync(join(tmpdir(), "weft-backend-log-"));
  readonly file = join(this.dir, "log");
  readonly log = new Logger({
    component: "weftd",
    file: this.file,
    fileLevel: "debug",
    stderrLevel: "error",
  });
  private seen = 0;

  /** All lines so far. */
  lines(): string[] {
    try {
      return readFileSync(this.file, "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  }

  /** The lines written since the last call. */
  fresh(): string[] {
    const all = this.lines();
    const out = all.slice(this.seen);
    this.seen = all.length;
    return out;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface PodNode {
  node: UnderlayNode;
  subnet: string;
  pod: TestNetns;
  /** The pod's address, `<subnet>.2`. */
  podIp: string;
  ipv6Subnet?: string;
  podIpv6?: string;
  ext: ExternalInterface;
}

const base = (subnet: string) => subnet.split("/")[0]!.split(".").slice(0, 3).join(".");

/**
 * Gives a node a cni0 bridge at `<subnet>.1/24` with a pod namespace on it at `<subnet>.2/24` (and with
 * `v6`, a `/64` "fd10:0:0:N::/64": `::1` on cni0, `::2` in the pod).
 */
export async function podBehind(node: UnderlayNode, subnet: string, v6?: string): Promise<PodNode> {
  const pod = TestNetns.create("wbp");
  const b = base(subnet);
  const host = uniqueName("vb");
  const n = (args: string[]) => node.netns.exec(["ip", ...args]);
  n(["link", "add", "cni0", "type", "bridge"]);
  n(["addr", "add", `${b}.1/24`, "dev", "cni0"]);
  n(["link", "set", "cni0", "up"]);
  n(["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod.name]);
  n(["link", "set", host, "master", "cni0", "up"]);
  pod.exec(["ip", "addr", "add", `${b}.2/24`, "dev", "eth0"]);
  pod.exec(["ip", "link", "set", "eth0", "up"]);
  pod.exec(["ip", "route", "add", "default", "via", `${b}.1`]);
  const out: PodNode = { node, subnet, pod, podIp: `${b}.2`, ext: undefined as unknown as ExternalInterface };
  if (v6) {
    const p6 = v6.split("/")[0]!;
    n(["addr", "add", `${p6}1/64`, "dev", "cni0", "nodad"]);
    pod.exec(["ip", "addr", "add", `${p6}2/64`, "dev", "eth0", "nodad"]);
    pod.exec(["ip", "-6", "route", "add", "default", "via", `${p6}1`]);
    node.netns.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    out.podIpv6 = `${p6}2`;
    out.ipv6Subnet = v6;
  }
  out.ext = await findExternalInterface({ netns: node.netns.path, ipv6: !!v6, iface: ["eth0"] });
  return out;
}

/** Whether `from` gets an answer from `ip` (one ping, 2 s). */
export function pings(from: TestNetns, ip: string): boolean {
  try {
    from.exec(["ping", "-c1", "-W2", ip]);
    return true;
  } catch {
    return false;
  }
}

/** `ip <args>` inside a node, trimmed lines. */
export function ipLines(node: UnderlayNode, args: string[]): string[] {
  return node.netns
    .exec(["ip", ...args])
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

export function destroyAll(u: Underlay | undefined, pods: PodNode[]): void {
  for (const p of pods) p.pod.delete();
  u?.destroy();
}
