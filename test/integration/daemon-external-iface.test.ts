/**
 * weftd's external interface, found as flanneld finds it, inside an underlay node (its default route
 * leaves by eth0): by default route, by --iface names and addresses (first match wins), by --public-ip
 * alone, with the errors an operator gets for each wrong choice.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ExtIfaceOptions, findExternalInterface } from "../../daemon/external-iface.js";
import { assertRoot } from "../helpers/netns.js";
import { Underlay, type UnderlayNode } from "../helpers/underlay.js";

const s = suite("external interface");
let u: Underlay;
let node: UnderlayNode;
let bare: UnderlayNode;

s.before(() => {
  assertRoot();
  u = Underlay.create(2);
  node = u.nodes[0]!;
  bare = u.nodes[1]!;
  // A second interface with its own address, and one with no IPv4 address at all.
  node.netns.exec(["ip", "link", "add", "ext1", "mtu", "1400", "type", "veth", "peer", "name", "ext1p"]);
  node.netns.exec(["ip", "addr", "add", "10.50.0.1/24", "dev", "ext1"]);
  node.netns.exec(["ip", "link", "set", "ext1", "up"]);
  node.netns.exec(["ip", "link", "set", "ext1p", "up"]);
  // No IPv6 on ext1, not even link-local (flanneld would take a link-local address).
  node.netns.exec(["sysctl", "-qw", "net.ipv6.conf.ext1.disable_ipv6=1"]);
  // IPv6 on eth0: a global address and a v6 default route.
  node.netns.exec(["ip", "addr", "add", "fd77::1/64", "dev", "eth0", "nodad"]);
  node.netns.exec(["ip", "-6", "route", "add", "default", "via", "fd77::fe", "dev", "eth0"]);
  bare.netns.exec(["ip", "route", "del", "default"]);
});
s.after(() => u?.destroy());

const find = (n: UnderlayNode, o: Omit<ExtIfaceOptions, "netns"> = {}) =>
  findExternalInterface({ ...o, netns: n.netns.path });
const failure = (n: UnderlayNode, o: Omit<ExtIfaceOptions, "netns">) =>
  find(n, o).then(
    (r) => assert.unreachable(`expected a failure, got ${JSON.stringify(r)}`),
    (e: Error) => e.message,
  );

s(
  "default: the interface of the default route, its address, MTU and index; public IP = its address",
  async () => {
    const ext = await find(node);
    const [eth0] = node.netns.ipJson<Array<{ ifindex: number }>>(["link", "show", "eth0"]);
    assert.equal(ext, {
      name: "eth0",
      index: eth0!.ifindex,
      mtu: 1500,
      ifaceAddr: node.ip,
      publicIp: node.ip,
    });
  },
);

s("--iface by name or by address; the first that matches wins", async () => {
  assert.is((await find(node, { iface: ["ext1"] })).ifaceAddr, "10.50.0.1");
  assert.is((await find(node, { iface: ["ext1"] })).mtu, 1400);
  assert.is((await find(node, { iface: ["10.50.0.1"] })).name, "ext1");
  assert.is((await find(node, { iface: ["eth9", "10.9.9.9", "ext1", "eth0"] })).name, "ext1");
  assert.is((await find(node, { iface: [node.ip, "ext1"] })).name, "eth0");
});

s("--iface that matches nothing: every reason named", async () => {
  assert.is(
    await failure(node, { iface: ["eth9", "10.9.9.9"] }),
    "no interface given with --iface matched: interface eth9 not found; no interface with address 10.9.9.9",
  );
});

s(
  "--public-ip: advertised instead of the interface address; alone, it picks the interface holding it",
  async () => {
    const nat = await find(node, { iface: ["eth0"], publicIp: "203.0.113.5" });
    assert.is(nat.ifaceAddr, node.ip);
    assert.is(nat.publicIp, "203.0.113.5");
    assert.is((await find(node, { publicIp: "10.50.0.1" })).name, "ext1");
    assert.is(await failure(node, { publicIp: "203.0.113.5" }), "no interface with address 203.0.113.5");
    assert.is(await failure(node, { publicIp: "nope" }), "invalid public IP address: nope");
  },
);

s("IPv6: the v6 address of the interface (global before link-local), and the v6 default route", async () => {
  const dual = await find(node, { ipv6: true });
  assert.is(dual.ifaceV6Addr, "fd77::1");
  assert.is(dual.publicIpv6, "fd77::1");
  assert.is(dual.ifaceAddr, node.ip);
  const v6only = await find(node, { ipv4: false, ipv6: true });
  assert.is(v6only.name, "eth0");
  assert.is(v6only.ifaceAddr, undefined);
  assert.is(v6only.publicIp, undefined);
  assert.is((await find(node, { ipv4: false, ipv6: true, iface: ["fd77::1"] })).name, "eth0");
  assert.is(
    await failure(node, { ipv6: true, iface: ["ext1"] }),
    "no interface given with --iface matched: failed to find IPv6 address for interface ext1",
  );
});

s("no default route: flanneld's words", async () => {
  assert.is(await failure(bare, {}), "failed to get default interface: unable to find default route");
  assert.is((await find(bare, { iface: ["eth0"] })).name, "eth0");
});

s.run();
