import { test } from "uvu";
import * as assert from "uvu/assert";
import { ipamDirOf } from "../../daemon/cni-server.js";

// The host-local directory weftd's /metrics counts a served call's addresses in (weftd_ipam_addresses).
const dirOf = (conf: object) => ipamDirOf(Buffer.from(JSON.stringify(conf)));

test("flannel: its own ipam (what it hands to the delegate), else host-local's default directory", () => {
  // flannel refuses an ipam inside `delegate`; the delegate's ipam is built from flannel's `ipam`.
  assert.is(
    dirOf({ name: "cbr0", type: "flannel", ipam: { dataDir: "/tmp/x/ipam" }, delegate: { bridge: "cni0" } }),
    "/tmp/x/ipam/cbr0",
  );
  assert.is(dirOf({ name: "cbr0", type: "flannel" }), "/var/lib/cni/networks/cbr0");
  assert.is(dirOf({ name: "cbr0", type: "flannel", ipam: { type: "static" } }), undefined);
});

test("bridge or host-local with host-local ipam; nothing for other ipam, no name, or not JSON", () => {
  assert.is(dirOf({ name: "n", type: "bridge", ipam: { type: "host-local" } }), "/var/lib/cni/networks/n");
  assert.is(dirOf({ name: "n", type: "bridge", ipam: { type: "host-local", dataDir: "/d" } }), "/d/n");
  assert.is(dirOf({ name: "n", type: "bridge", ipam: { type: "dhcp" } }), undefined);
  assert.is(dirOf({ type: "bridge", ipam: { type: "host-local" } }), undefined);
  assert.is(ipamDirOf(Buffer.from("{")), undefined);
});

test.run();
