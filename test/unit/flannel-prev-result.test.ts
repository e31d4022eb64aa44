import { test } from "uvu";
import * as assert from "uvu/assert";
import { withRouteGateways } from "../../plugins/flannel/prev-result.js";

test("CHECK's prevResult: gateway-less routes get their family's gateway, as ConfigureIface installed them", () => {
  const prev = {
    cniVersion: "1.0.0",
    ips: [
      { address: "10.1.17.2/24", gateway: "10.1.17.1", interface: 2 },
      { address: "fc00::2/64", gateway: "fc00::1", interface: 2 },
    ],
    routes: [{ dst: "10.1.0.0/16" }, { dst: "fc00::/48" }, { dst: "0.0.0.0/0", gw: "10.1.17.254" }],
  };
  assert.equal(withRouteGateways(prev).routes, [
    { dst: "10.1.0.0/16", gw: "10.1.17.1" },
    { dst: "fc00::/48", gw: "fc00::1" },
    { dst: "0.0.0.0/0", gw: "10.1.17.254" },
  ]);
  assert.equal(prev.routes[0], { dst: "10.1.0.0/16" }, "the input is not modified");
  const noGw = { cniVersion: "1.0.0", ips: [{ address: "10.1.17.2/24" }], routes: [{ dst: "10.1.0.0/16" }] };
  assert.equal(withRouteGateways(noGw).routes, [{ dst: "10.1.0.0/16" }]);
});

test.run();
