/**
 * hostPort traffic for integration tests: an outside client (a netns behind a veth whose host end carries
 * the "node address"), TCP/UDP echo servers in a pod (socat), one-shot clients, and the nat/nft rules that
 * belong to given containers. Used by the portmap suites (libcni and go-cni clients).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { uniqueName } from "./names.js";
import { TestNetns } from "./netns.js";

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** A free 10.N.M.0/24 (no route overlaps 10.N/16) for the outside client's link. */
export function freeV4Subnet(): string {
  const routes = sh("ip", ["-4", "route", "show", "table", "all"]);
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 151);
    if (!new RegExp(`(^|\\s)10\\.${n}\\.`).test(routes))
      return `10.${n}.${1 + Math.floor(Math.random() * 250)}`;
  }
  throw new Error("no free subnet");
}

export const randomPort = () => 20000 + Math.floor(Math.random() * 20000);

/**
 * An outside client: a netns linked to the host by a veth. The host end carries the "node address"
 * (and a v6 one), so traffic to it arrives on PREROUTING like traffic from another machine.
 */
export class Outside {
  readonly ns: TestNetns;
  readonly hostIf: string;
  readonly nodeIp: string;
  readonly clientIp: string;
  readonly nodeIp6: string;

  constructor() {
    this.ns = TestNetns.create("wpmc");
    this.hostIf = uniqueName("wpmh");
    const base = freeV4Subnet();
    const hex = (Math.floor(Math.random() * 0xfff0) + 1).toString(16);
    this.nodeIp = `${base}.1`;
    this.clientIp = `${base}.2`;
    this.nodeIp6 = `fd5f:${hex}::1`;
    try {
      sh("ip", ["link", "add", this.hostIf, "type", "veth", "peer", "name", "eth0", "netns", this.ns.name]);
      sh("ip", ["addr", "add", `${this.nodeIp}/24`, "dev", this.hostIf]);
      sh("ip", ["addr", "add", `${this.nodeIp6}/64`, "dev", this.hostIf, "nodad"]);
      sh("ip", ["link", "set", this.hostIf, "up"]);
      sh("ip", ["-n", this.ns.name, "addr", "add", `${this.clientIp}/24`, "dev", "eth0"]);
      sh("ip", ["-n", this.ns.name, "addr", "add", `fd5f:${hex}::2/64`, "dev", "eth0", "nodad"]);
      sh("ip", ["-n", this.ns.name, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", this.ns.name, "route", "add", "default", "via", this.nodeIp]);
      sh("ip", ["-n", this.ns.name, "-6", "route", "add", "default", "via", this.nodeIp6]);
    } catch (err) {
      this.delete();
      throw err;
    }
  }

  delete(): void {
    this.ns.delete();
    try {
      sh("ip", ["link", "del", this.hostIf]);
    } catch {
      // went with the netns
    }
  }
}

/** TCP and UDP echo servers in a pod that answer with `tag` (socat, stopped by stop()). */
export class Servers {
  private procs: ChildProcess[] = [];
  constructor(ns: TestNetns, tag: string) {
    const reply = `SYSTEM:echo ${tag}`;
    for (const addr of ["TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0", "UDP6-RECVFROM:53,fork,ipv6only=0"]) {
      this.procs.push(spawn("ip", ["netns", "exec", ns.name, "socat", addr, reply], { stdio: "ignore" }));
    }
  }
  stop(): void {
    for (const p of this.procs) p.kill("SIGTERM");
  }
}

export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One TCP exchange from `ns` (undefined: the host); the server's answer, or undefined. */
export function tcpOnce(ns: TestNetns | undefined, host: string, port: number): string | undefined {
  const proto = host.includes(":") ? "TCP6" : "TCP4";
  const argv = ["socat", "-T", "2", "-", `${proto}:${hostPort(host, port)},connect-timeout=2`];
  try {
    const out = ns ? sh("ip", ["netns", "exec", ns.name, ...argv], "") : sh(argv[0]!, argv.slice(1), "");
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

export function udpOnce(
  ns: TestNetns | undefined,
  host: string,
  port: number,
  sourcePort?: number,
): string | undefined {
  const proto = host.includes(":") ? "UDP6" : "UDP4";
  const opts = sourcePort ? `,sourceport=${sourcePort}` : "";
  const argv = ["socat", "-T", "2", "-t", "2", "-", `${proto}:${hostPort(host, port)}${opts}`];
  try {
    const out = ns
      ? sh("ip", ["netns", "exec", ns.name, ...argv], "ping\n")
      : sh(argv[0]!, argv.slice(1), "ping\n");
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Retries while servers start (socat needs a moment); a negative answer is final after the retries. */
export function eventually(fn: () => string | undefined, tries = 10): string | undefined {
  for (let i = 0; i < tries; i++) {
    const r = fn();
    if (r !== undefined) return r;
    execFileSync("sleep", ["0.3"]);
  }
  return undefined;
}

/** Lines of `iptables-save -t nat` (v4 and v6) that belong to these containers. */
export function natLinesOf(netName: string, cids: string[]): string[] {
  const needles = cids.flatMap((id) => [dnatChainName(netName, id), `id: \\"${id}\\"`]);
  return ["iptables-save", "ip6tables-save"].flatMap((tool) =>
    sh(tool, ["-t", "nat"])
      .split("\n")
      .filter((l) => needles.some((n) => l.includes(n))),
  );
}

/** nft rules (both families' cni_hostport tables) commented with these container IDs. */
export function nftRulesOf(cids: string[]): string[] {
  const out: string[] = [];
  for (const fam of ["ip", "ip6"]) {
    let text: string;
    try {
      text = sh("nft", ["list", "table", fam, "cni_hostport"]);
    } catch {
      continue;
    }
    out.push(...text.split("\n").filter((l) => cids.some((id) => l.includes(`comment "${id}"`))));
  }
  return out;
}
