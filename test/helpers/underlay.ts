import { execFileSync } from "node:child_process";
import { TestNetns } from "./netns.js";

/**
 * Several "nodes" on one machine: each node is a network namespace whose `eth0` is a port of one
 * underlay bridge (itself in a namespace of its own, so the host's links and tables are never touched).
 * The underlay namespace also holds the nodes' default gateway, so "the default-route interface" means
 * `eth0` in every node, as it would on a real machine.
 *
 *   const u = Underlay.create(3);          // nodes u.nodes[0..2], eth0 = 192.168.77.1..3/24
 *   u.nodes[0].netns.exec(["ping", "-c1", u.nodes[1].ip]);
 *   u.destroy();
 *
 * Addresses are the same in every run: each run's namespaces are private, so two runs never meet.
 */
export interface UnderlayNode {
  netns: TestNetns;
  /** The node's underlay address (its public IP), e.g. "192.168.77.1". */
  ip: string;
  /** Prefix length of the underlay subnet. */
  prefix: number;
  /** The node's underlay interface inside its namespace. */
  iface: string;
  /** The MAC of that interface. */
  mac: string;
}

export interface UnderlayOptions {
  /** First three octets of the underlay /24 (default "192.168.77"). */
  subnet24?: string;
  /** MTU of the underlay links (default 1500). */
  mtu?: number;
}

const run = (args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });

export class Underlay {
  readonly nodes: UnderlayNode[] = [];

  private constructor(
    readonly hub: TestNetns,
    readonly subnet24: string,
    readonly mtu: number,
  ) {}

  static create(count: number, o: UnderlayOptions = {}): Underlay {
    const hub = TestNetns.create("wul");
    const u = new Underlay(hub, o.subnet24 ?? "192.168.77", o.mtu ?? 1500);
    try {
      run(["-n", hub.name, "link", "add", "br0", "mtu", String(u.mtu), "type", "bridge"]);
      run(["-n", hub.name, "addr", "add", `${u.subnet24}.254/24`, "dev", "br0"]);
      run(["-n", hub.name, "link", "set", "br0", "up"]);
      for (let i = 0; i < count; i++) u.addNode();
    } catch (err) {
      u.destroy();
      throw err;
    }
    return u;
  }

  /** Adds one more node (a joining node), with the next free address. */
  addNode(): UnderlayNode {
    const i = this.nodes.length + 1;
    const netns = TestNetns.create("wun");
    const ip = `${this.subnet24}.${i}`;
    const hubEnd = `p${i}`;
    try {
      run([
        "-n",
        this.hub.name,
        "link",
        "add",
        hubEnd,
        "mtu",
        String(this.mtu),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        netns.name,
      ]);
      run(["-n", this.hub.name, "link", "set", hubEnd, "master", "br0", "up"]);
      run(["-n", netns.name, "link", "set", "eth0", "mtu", String(this.mtu), "up"]);
      run(["-n", netns.name, "addr", "add", `${ip}/24`, "dev", "eth0"]);
      run(["-n", netns.name, "route", "add", "default", "via", `${this.subnet24}.254`, "dev", "eth0"]);
      netns.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    } catch (err) {
      netns.delete();
      throw err;
    }
    const [link] = netns.ipJson<Array<{ address: string }>>(["link", "show", "eth0"]);
    const node: UnderlayNode = { netns, ip, prefix: 24, iface: "eth0", mac: link?.address ?? "" };
    this.nodes.push(node);
    return node;
  }

  /** Removes every node and the underlay (links go with their namespaces). */
  destroy(): void {
    for (const n of this.nodes) n.netns.delete();
    this.hub.delete();
  }
}
