import { readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { natRules, subnet, withHarness } from "./bridge-harness.js";

/**
 * Drop-in: a pod added by the reference bridge (Debian's containernetworking-plugins v1.1.1, with its
 * host-local) is removed by weft's, and the reverse, on the same bridge and reservation directory;
 * the masquerade rules of either are removed by the other. v1.1.1 speaks CNI up to 1.0.0.
 */

assertRoot();
const FILE = 2;
const net = (n: number) => subnet(FILE, n);

const ipsOf = (r: { json?: Record<string, unknown> }) =>
  ((r.json?.ips ?? []) as Array<{ address: string }>).map((i) => i.address.split("/")[0]!);

test(
  "added by the reference, deleted by weft: veth, reservation and masquerade rules gone",
  withHarness((h) => {
    const conf = h.conf({ cniVersion: "1.0.0", subnets: [net(1)], extra: { ipMasq: true } });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "ref-to-weft", ifname: "eth0" };
    const added = h.ref("ADD", call, conf);
    assert.is(added.status, 0, added.stdout + added.stderr);
    assert.is(h.ports().length, 1);
    assert.equal(h.reservations(), ipsOf(added));
    assert.ok(natRules().includes('id: \\"ref-to-weft\\"'));
    // weft sees the reference's pod as healthy.
    const check = h.weft("CHECK", call, { ...conf, prevResult: added.json });
    assert.is(check.status, 0, check.stdout + check.stderr);
    const del = h.weft("DEL", call, conf);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(h.ports(), []);
    assert.equal(h.reservations(), []);
    assert.not.ok(natRules().includes('id: \\"ref-to-weft\\"'));
  }),
);

test(
  "added by weft, deleted by the reference: veth, reservation and masquerade rules gone",
  withHarness((h) => {
    const conf = h.conf({ cniVersion: "1.0.0", subnets: [net(2)], extra: { ipMasq: true } });
    const pod = h.pod();
    const call = { netns: pod.path, containerId: "weft-to-ref", ifname: "eth0" };
    const added = h.weft("ADD", call, conf);
    assert.is(added.status, 0, added.stdout + added.stderr);
    assert.equal(h.reservations(), ipsOf(added));
    // The reservation file is the reference's format: "<id>\r\n<ifname>".
    assert.is(readFileSync(`${h.dataDir}/${h.name}/${ipsOf(added)[0]}`, "utf8"), "weft-to-ref\r\neth0");
    const check = h.ref("CHECK", call, { ...conf, prevResult: added.json });
    assert.is(check.status, 0, check.stdout + check.stderr);
    const del = h.ref("DEL", call, conf);
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.equal(h.ports(), []);
    assert.equal(h.reservations(), []);
    assert.not.ok(natRules().includes('id: \\"weft-to-ref\\"'));
  }),
);

test(
  "pods of both on one bridge reach each other",
  withHarness((h) => {
    const conf = h.conf({ cniVersion: "1.0.0", subnets: [net(3)] });
    const a = h.pod();
    const b = h.pod();
    const ra = h.ref("ADD", { netns: a.path, containerId: "mix-a", ifname: "eth0" }, conf);
    const rb = h.weft("ADD", { netns: b.path, containerId: "mix-b", ifname: "eth0" }, conf);
    assert.is(ra.status, 0, ra.stdout + ra.stderr);
    assert.is(rb.status, 0, rb.stdout + rb.stderr);
    a.exec(["ping", "-c", "1", "-W", "2", ipsOf(rb)[0]!]);
    b.exec(["ping", "-c", "1", "-W", "2", ipsOf(ra)[0]!]);
    assert.is(h.weft("DEL", { netns: a.path, containerId: "mix-a", ifname: "eth0" }, conf).status, 0);
    assert.is(h.ref("DEL", { netns: b.path, containerId: "mix-b", ifname: "eth0" }, conf).status, 0);
    assert.equal(h.reservations(), []);
    assert.equal(h.ports(), []);
  }),
);

test.run();
