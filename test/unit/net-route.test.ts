import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  isProto,
  mainTableRoutes,
  type RouteRecord,
  routeAdd,
  routeDel,
  routeReplace,
  routeShow,
  routeSpecOf,
  routesOnDev,
} from "../../shared/net/route.js";

test("routeReplace: flanneld's vxlan route, onlink, tagged with a protocol", () => {
  const c = routeReplace({
    dst: "10.244.2.0/24",
    gw: "10.244.2.0",
    dev: "flannel.1",
    onlink: true,
    proto: 87,
  });
  assert.is(c.line, "route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink proto 87");
  assert.match(c.what, "10.244.2.0/24");
});

test("routeReplace: host-gw route, v6, metric and table", () => {
  assert.is(
    routeReplace({ dst: "10.244.3.0/24", gw: "192.168.77.3", dev: "eth0", proto: 87 }).line,
    "route replace 10.244.3.0/24 via 192.168.77.3 dev eth0 proto 87",
  );
  assert.is(
    routeReplace({ dst: "fd10:0:0:2::/64", gw: "fd77::2", dev: "eth0", proto: 87, metric: 1024, table: 100 })
      .line,
    "route replace fd10:0:0:2::/64 via fd77::2 dev eth0 proto 87 metric 1024 table 100",
  );
});

test("routeDel names the route exactly (gateway, device, protocol) and tolerates one already gone", () => {
  const c = routeDel({ dst: "10.244.9.0/24", gw: "192.168.77.9", dev: "eth0", proto: 87 });
  assert.is(c.line, "route del 10.244.9.0/24 via 192.168.77.9 dev eth0 proto 87");
  assert.ok(c.mayFail?.test("RTNETLINK answers: No such process"));
  assert.not.ok(c.mayFail?.test("RTNETLINK answers: Operation not permitted"));
});

test("routeAdd is unchanged for the plugins", () => {
  assert.is(
    routeAdd({ dst: "10.244.0.0/16", gw: "10.244.1.1", dev: "eth0" }).line,
    "route add 10.244.0.0/16 via 10.244.1.1 dev eth0",
  );
});

test("device names are quoted for ip's batch reader", () => {
  assert.is(routeReplace({ dst: "10.1.0.0/16", dev: "a b" }).line, 'route replace 10.1.0.0/16 dev "a b"');
});

const table: RouteRecord[] = [
  {
    type: "unicast",
    dst: "10.244.2.0/24",
    gateway: "10.244.2.0",
    dev: "flannel.1",
    protocol: "87",
    flags: ["onlink"],
  },
  {
    type: "unicast",
    dst: "10.244.3.0/24",
    gateway: "192.168.77.3",
    dev: "eth0",
    protocol: "boot",
    flags: [],
  },
  { type: "unicast", dst: "default", gateway: "192.168.77.254", dev: "eth0", protocol: "boot", flags: [] },
  { type: "local", dst: "10.244.1.0", dev: "flannel.1", table: "local", protocol: "kernel", flags: [] },
  { type: "blackhole", dst: "10.244.7.0/24", protocol: "87", flags: [] },
  { dst: "10.244.8.0/24", gateway: "192.168.77.8", dev: "eth0", table: "100", protocol: "87", flags: [] },
];

test("mainTableRoutes keeps the main table's unicast routes; filters by protocol and device", () => {
  const main = mainTableRoutes(table);
  assert.equal(
    main.map((r) => r.dst),
    ["10.244.2.0/24", "10.244.3.0/24", "default"],
  );
  assert.equal(
    main.filter((r) => isProto(r, 87)).map((r) => r.dst),
    ["10.244.2.0/24"],
  );
  assert.equal(
    routesOnDev(main, "eth0").map((r) => r.dst),
    ["10.244.3.0/24", "default"],
  );
  assert.ok(isProto({ dst: "x", protocol: "0x57" }, 87), "ip may print the number in hex");
});

test("routeSpecOf turns a record back into the spec that deletes exactly it", () => {
  assert.equal(routeSpecOf(table[0]!, 4), {
    dst: "10.244.2.0/24",
    gw: "10.244.2.0",
    dev: "flannel.1",
    onlink: true,
    proto: "87",
  });
  assert.is(
    routeDel(routeSpecOf(table[1]!, 4)).line,
    "route del 10.244.3.0/24 via 192.168.77.3 dev eth0 proto boot",
  );
  assert.equal(routeSpecOf({ dst: "10.9.9.9", dev: "eth0", metric: 5 }, 4), {
    dst: "10.9.9.9/32",
    dev: "eth0",
    metric: 5,
  });
});

test("routeShow reads every table of a family (ip's `table main root` filter answers nothing)", () => {
  assert.is(routeShow(4).line, "route show table all");
  assert.is(routeShow(6).line, "route show root ::/0 table all");
});

test.run();
