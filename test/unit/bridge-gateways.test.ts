import { test } from "uvu";
import * as assert from "uvu/assert";
import { calcGateways } from "../../plugins/bridge/gateways.js";
import type { Result } from "../../shared/cni/types.js";

const ipam = (): Result => ({
  cniVersion: "1.0.0",
  ips: [{ address: "10.244.1.2/24" }, { address: "fd00:10:244:1::2/64", gateway: "fd00:10:244:1::fe" }],
  routes: [{ dst: "10.244.0.0/16" }],
});

test("gateway defaults to network+1, interface index 2, one default route per family", () => {
  const r = ipam();
  const gws = calcGateways(r, { isGW: true, isDefaultGW: true });
  assert.equal(r.ips, [
    { address: "10.244.1.2/24", interface: 2, gateway: "10.244.1.1" },
    { address: "fd00:10:244:1::2/64", gateway: "fd00:10:244:1::fe", interface: 2 },
  ]);
  assert.equal(r.routes, [
    { dst: "10.244.0.0/16" },
    { dst: "0.0.0.0/0", gw: "10.244.1.1" },
    { dst: "::/0", gw: "fd00:10:244:1::fe" },
  ]);
  assert.equal(gws, [
    { family: 4, gws: ["10.244.1.1/24"] },
    { family: 6, gws: ["fd00:10:244:1::fe/64"] },
  ]);
});

test("an existing default route with a gateway is kept; without isGateway nothing is computed", () => {
  const r = ipam();
  r.routes!.push({ dst: "0.0.0.0/0", gw: "10.244.1.254" });
  calcGateways(r, { isGW: true, isDefaultGW: true });
  assert.is(r.routes!.filter((x) => x.dst === "0.0.0.0/0").length, 1);
  const plain = ipam();
  const gws = calcGateways(plain, { isGW: false, isDefaultGW: false });
  assert.is(plain.ips![0]!.gateway, undefined);
  assert.equal(gws, [
    { family: 4, gws: [] },
    { family: 6, gws: [] },
  ]);
});

test.run();
