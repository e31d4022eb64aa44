import { execFileSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { subnet, withHarness } from "./bridge-harness.js";

/** CHECK flags an MTU that drifted from the configured `mtu` on either veth end (anchors 6, item 5). */

assertRoot();
const FILE = 4;
const net = (n: number) => subnet(FILE, n);

const vethOf = (r: { json?: Record<string, unknown> }) =>
  (r.json!.interfaces as Array<{ name: string }>)[1]!.name;

test(
  "a changed pod eth0 MTU fails CHECK naming both values; a healthy pod still passes",
  withHarness((h) => {
    const conf = h.conf({ subnets: [net(1)] });
    const [a, b] = [h.pod(), h.pod()];
    const callA = { netns: a.path, containerId: "mtu-a", ifname: "eth0" };
    const callB = { netns: b.path, containerId: "mtu-b", ifname: "eth0" };
    const ra = h.weft("ADD", callA, conf);
    const rb = h.weft("ADD", callB, conf);
    assert.is(ra.status, 0, ra.stdout + ra.stderr);
    assert.is(rb.status, 0, rb.stdout + rb.stderr);
    const before = h.weft("CHECK", callA, { ...conf, prevResult: ra.json });
    assert.is(before.status, 0, before.stdout + before.stderr);

    execFileSync("ip", ["-n", a.name, "link", "set", "eth0", "mtu", "1300"]);
    const changed = h.weft("CHECK", callA, { ...conf, prevResult: ra.json });
    assert.is(changed.status, 1, changed.stdout + changed.stderr);
    assert.is(changed.json!.msg, "Interface eth0 MTU 1300 doesn't match configured MTU 1450");

    const healthy = h.weft("CHECK", callB, { ...conf, prevResult: rb.json });
    assert.is(healthy.status, 0, healthy.stdout + healthy.stderr);

    assert.is(h.weft("DEL", callA, conf).status, 0);
    assert.is(h.weft("DEL", callB, conf).status, 0);
  }),
);

test(
  "a changed host veth MTU fails CHECK naming the veth and both values",
  withHarness((h) => {
    const conf = h.conf({ subnets: [net(2)] });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "mtu-h", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    const veth = vethOf(r);
    execFileSync("ip", ["link", "set", veth, "mtu", "1400"]);
    const changed = h.weft("CHECK", call, { ...conf, prevResult: r.json });
    assert.is(changed.status, 1, changed.stdout + changed.stderr);
    assert.is(changed.json!.msg, `Interface ${veth} MTU 1400 doesn't match configured MTU 1450`);
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test(
  "without `mtu` in the config CHECK does not judge the MTU",
  withHarness((h) => {
    const conf = h.conf({ subnets: [net(3)], extra: { mtu: undefined } });
    assert.not.ok("mtu" in JSON.parse(JSON.stringify(conf)));
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "mtu-n", ifname: "eth0" };
    const r = h.weft("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    execFileSync("ip", ["-n", pod.name, "link", "set", "eth0", "mtu", "1300"]);
    const check = h.weft("CHECK", call, { ...conf, prevResult: r.json });
    assert.is(check.status, 0, check.stdout + check.stderr);
    assert.is(h.weft("DEL", call, conf).status, 0);
  }),
);

test.run();
