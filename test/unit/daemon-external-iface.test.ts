import { test } from "uvu";
import * as assert from "uvu/assert";
import { chooseExternalInterface, type NetState, usableAddrs } from "../../daemon/external-iface.js";

type Addr = { family: "inet" | "inet6"; local: string; prefixlen: number; [flag: string]: unknown };
const link = (ifindex: number, ifname: string, addr_info: Addr[], mtu = 1500) => ({
  ifindex,
  ifname,
  mtu,
  addr_info,
});
const v4 = (local: string, extra: Record<string, unknown> = {}): Addr => ({
  family: "inet",
  local,
  prefixlen: 24,
  ...extra,
});
const v6 = (local: string, extra: Record<string, unknown> = {}): Addr => ({
  family: "inet6",
  local,
  prefixlen: 64,
  ...extra,
});

test("usable addresses as flanneld sorts them: global before link-local, permanent before dynamic, non-temporary first", () => {
  const l = link(2, "eth0", [
    v4("169.254.3.3"),
    v4("127.0.0.2"),
    v4("10.0.0.9", { dynamic: true }),
    v4("10.0.0.5"),
    v6("fe80::1"),
    v6("2001:db8::9", { temporary: true, dynamic: true }),
    v6("2001:db8::5", { dynamic: true }),
    v6("2001:db8::7", { deprecated: true }),
    v6("::1"),
  ]);
  assert.equal(usableAddrs(l, 4), ["10.0.0.5", "10.0.0.9", "169.254.3.3"]);
  assert.equal(usableAddrs(l, 6), ["2001:db8::5", "2001:db8::9", "fe80::1"]);
});

const state = (over: Partial<NetState> = {}): NetState => ({
  links: [link(1, "lo", [v4("127.0.0.1")], 65536), link(2, "eth0", [v4("192.168.1.2"), v6("fd00::2")])],
  routes4: [{ dst: "default", gateway: "192.168.1.1", dev: "eth0" }],
  routes6: [{ dst: "default", gateway: "fd00::1", dev: "eth0" }],
  ...over,
});

test("a multipath default route names no interface", () => {
  const s = state({ routes4: [{ dst: "default" }] });
  assert.throws(
    () => chooseExternalInterface(s, {}),
    (e: Error) =>
      e.message === "failed to get default interface: found default route but could not determine interface",
  );
});

test("dual-stack: the v4 and v6 default routes must leave by one interface", () => {
  const s = state({
    links: [...state().links, link(3, "eth1", [v6("fd01::2")])],
    routes6: [{ dst: "default", dev: "eth1" }],
  });
  assert.throws(
    () => chooseExternalInterface(s, { ipv6: true }),
    (e: Error) =>
      e.message === "v6 default route interface eth1 must be the same with v4 default route interface eth0",
  );
});

test("neither family enabled is refused", () => {
  assert.throws(() => chooseExternalInterface(state(), { ipv4: false }), /neither IPv4 nor IPv6/);
});

test("an interface without an IPv4 address", () => {
  const s = state({ links: [link(2, "eth0", [v6("fd00::2")])] });
  assert.throws(
    () => chooseExternalInterface(s, {}),
    (e: Error) => e.message === "failed to find IPv4 address for interface eth0",
  );
});

test.run();
