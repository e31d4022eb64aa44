import { test } from "uvu";
import * as assert from "uvu/assert";
import { type FdbRecord, fdbAppend, fdbDel, fdbRemotes, fdbReplace, fdbShow } from "../../shared/net/fdb.js";

test("fdb entries as flanneld writes them (NeighSet with NTF_SELF, NUD_PERMANENT)", () => {
  const e = { mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1", dst: "192.168.77.2" };
  assert.is(fdbAppend(e).line, "fdb append aa:bb:cc:dd:ee:02 dev flannel.1 dst 192.168.77.2 self permanent");
  assert.is(
    fdbReplace(e).line,
    "fdb replace aa:bb:cc:dd:ee:02 dev flannel.1 dst 192.168.77.2 self permanent",
  );
  const d = fdbDel(e);
  assert.is(d.line, "fdb del aa:bb:cc:dd:ee:02 dev flannel.1 dst 192.168.77.2 self");
  assert.ok(d.mayFail?.test("RTNETLINK answers: No such file or directory"));
});

test("fdb commands refuse a bad MAC or address before bridge sees them", () => {
  assert.throws(() => fdbReplace({ mac: "aa:bb", dev: "flannel.1", dst: "192.168.77.2" }), /invalid MAC/);
  assert.throws(() => fdbReplace({ mac: "aa:bb:cc:dd:ee:02", dev: "flannel.1", dst: "nope" }), /invalid IP/);
});

test("fdbShow reads one device, and is tolerated when the device is gone", () => {
  const c = fdbShow("flannel.1");
  assert.is(c.line, "fdb show dev flannel.1");
  assert.ok(c.read);
  assert.ok(c.mayFail?.test('Cannot find device "flannel.1"'));
});

test("fdbRemotes keeps the entries with a remote (the vxlan dst), MACs lower case", () => {
  const read: FdbRecord[] = [
    { mac: "AA:BB:CC:DD:EE:02", dst: "192.168.77.2", flags: ["self"], state: "permanent" },
    { mac: "33:33:00:00:00:01", flags: ["self"], state: "permanent" },
    { mac: "aa:bb:cc:dd:ee:03", dst: "fd77::3", flags: ["self"], state: "" },
  ];
  assert.equal(fdbRemotes(read), [
    { mac: "aa:bb:cc:dd:ee:02", dst: "192.168.77.2", permanent: true },
    { mac: "aa:bb:cc:dd:ee:03", dst: "fd77::3", permanent: false },
  ]);
});

test.run();
