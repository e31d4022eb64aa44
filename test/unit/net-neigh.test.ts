import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  isPermanent,
  type NeighRecord,
  neighDel,
  neighReplace,
  neighShow,
  neighsOn,
} from "../../shared/net/neigh.js";

test("neighReplace: flanneld's permanent entry for a remote VTEP", () => {
  const c = neighReplace({ ip: "10.244.2.0", mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1" });
  assert.is(c.line, "neigh replace 10.244.2.0 lladdr aa:bb:cc:dd:ee:02 dev flannel.1 nud permanent");
});

test("neighReplace refuses a MAC ip would choke on (a bad lease must not end the batch)", () => {
  assert.throws(() => neighReplace({ ip: "10.244.2.0", mac: "zz", dev: "flannel.1" }), /invalid MAC/);
  assert.throws(
    () => neighReplace({ ip: "10.244.2", mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1" }),
    /invalid IP/,
  );
});

test("neighDel and the read of all neighbours", () => {
  assert.is(neighDel({ ip: "fd10::", dev: "flannel-v6.1" }).line, "neigh del fd10:: dev flannel-v6.1");
  assert.is(neighShow().line, "neigh show");
  assert.ok(neighShow().read);
});

test("neighsOn keeps one device's entries; isPermanent reads the state list", () => {
  const all: NeighRecord[] = [
    { dst: "10.244.2.0", dev: "flannel.1", lladdr: "aa:bb:cc:dd:ee:02", state: ["PERMANENT"] },
    { dst: "192.168.77.254", dev: "eth0", lladdr: "02:00:00:00:00:01", state: ["REACHABLE"] },
    { dst: "10.244.3.0", dev: "flannel.1", state: ["FAILED"] },
  ];
  const on = neighsOn(all, "flannel.1");
  assert.equal(
    on.map((n) => n.dst),
    ["10.244.2.0", "10.244.3.0"],
  );
  assert.ok(isPermanent(on[0]!));
  assert.not.ok(isPermanent(on[1]!));
});

test.run();
