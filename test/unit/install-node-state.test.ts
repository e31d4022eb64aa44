import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FLANNEL_CONFLIST } from "../../cli/install/conflists.js";
import { flannelNetworks, networkStateOf } from "../../cli/install/node-state.js";

test("the kube-flannel list: the plugins' defaults", () => {
  assert.equal(networkStateOf(FLANNEL_CONFLIST), {
    network: "cbr0",
    bridge: "cni0",
    flannelDataDir: "/var/lib/cni/flannel",
    ipamDir: "/var/lib/cni/networks/cbr0",
  });
});

test("a simulated node's list: its own directories and bridge", () => {
  const list = {
    name: "n1",
    cniVersion: "1.0.0",
    plugins: [
      {
        type: "flannel",
        dataDir: "/tmp/n1/flannel",
        ipam: { dataDir: "/tmp/n1/ipam" },
        delegate: { bridge: "br-n1" },
      },
    ],
  };
  assert.equal(networkStateOf(list, "/c/10.conflist"), {
    file: "/c/10.conflist",
    network: "n1",
    bridge: "br-n1",
    flannelDataDir: "/tmp/n1/flannel",
    ipamDir: "/tmp/n1/ipam/n1",
  });
});

test("a delegate other than bridge has no bridge; an ipam other than host-local no reservations", () => {
  const s = networkStateOf({
    name: "p",
    plugins: [{ type: "flannel", delegate: { type: "ptp" }, ipam: { type: "static" } }],
  });
  assert.equal(s, { network: "p", flannelDataDir: "/var/lib/cni/flannel" });
});

test("lists without flannel are not weft's; a single flannel config counts", () => {
  assert.is(networkStateOf({ name: "x", plugins: [{ type: "bridge" }] }), undefined);
  assert.is(networkStateOf({ name: "single", type: "flannel" })?.network, "single");
});

test("flannelNetworks reads the files libcni would load, falling back to the defaults", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-netstate-"));
  try {
    assert.equal(flannelNetworks(dir), [networkStateOf(FLANNEL_CONFLIST)]);
    writeFileSync(join(dir, "10-a.conflist"), JSON.stringify({ ...FLANNEL_CONFLIST, name: "a" }));
    writeFileSync(join(dir, "20-b.conflist.orig"), JSON.stringify({ ...FLANNEL_CONFLIST, name: "orig" }));
    writeFileSync(join(dir, "30-c.conf"), "not json");
    writeFileSync(
      join(dir, "40-d.json"),
      JSON.stringify({ name: "d", type: "flannel", delegate: { bridge: "d0" } }),
    );
    assert.equal(
      flannelNetworks(dir).map((n) => [n.network, n.bridge]),
      [
        ["a", "cni0"],
        ["d", "d0"],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
