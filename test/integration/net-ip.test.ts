/**
 * The ip batch executor against the real `ip`: a host batch held as a dialog (reads answered before the
 * rest is written), the pod part run only after a complete host part, and failures reported with ip's
 * own words. Host commands here only read; the pod is a test namespace.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bridgesShow } from "../../shared/net/bridge.js";
import { IpBatchError, ipBatch, ipBatchThenPod } from "../../shared/net/ip.js";
import { type LinkRecord, linkSetUp, linkShow, linkShowIfExists } from "../../shared/net/link.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";

const s = suite("ip batches: dialog, pod part, errors");
let pod: TestNetns;
s.before(() => {
  assertRoot();
  pod = TestNetns.create("wip");
});
s.after(() => pod?.delete());

const loUp = () => pod.ipJson<LinkRecord[]>(["link", "show", "dev", "lo"])[0]!.flags!.includes("UP");
const loDown = { line: "link set dev lo down", what: "set lo down" };

s("a dialog: the read is answered first, the rest follows, all reads come back in order", async () => {
  let answered: unknown;
  const r = await ipBatchThenPod(
    async (ip) => {
      [answered] = await ip.read([bridgesShow()]);
      assert.ok(Array.isArray(answered), "the dialog's answer is ip's JSON");
      return [linkShow("lo")];
    },
    [linkShow("lo")],
    { netns: pod.path, details: true },
  );
  assert.is(r.host.length, 2);
  assert.equal(r.host[0], answered);
  assert.is((r.host[1]![0] as LinkRecord).ifname, "lo");
  assert.is((r.pod[0]![0] as LinkRecord).ifindex, 1);
});

s("a dialog that throws changes nothing: the pod part never runs", async () => {
  await ipBatchThenPod(
    async (ip) => {
      await ip.read([bridgesShow()]);
      throw new Error("refused after reading");
    },
    [loDown],
    { netns: pod.path },
  ).then(
    () => assert.unreachable("the dialog's error must come through"),
    (err: Error) => assert.is(err.message, "refused after reading"),
  );
  assert.ok(loUp(), "lo in the pod is still up");
});

s("a dialog read that fails ends the batch with ip's message; the pod part never runs", async () => {
  const missing = uniqueName("wno");
  const err = await ipBatchThenPod(
    async (ip) => {
      await ip.read([linkShow(missing)]);
      return [];
    },
    [loDown],
    { netns: pod.path },
  ).catch((e: unknown) => e);
  assert.instance(err, IpBatchError);
  assert.is((err as IpBatchError).index, 0);
  assert.match((err as IpBatchError).reason, `Device "${missing}" does not exist`);
  assert.ok(loUp());
});

s(
  "a failed host part keeps the pod part from running; with podAfterHostFailure reads may be missing",
  async () => {
    const missing = uniqueName("wno");
    const err = await ipBatchThenPod([linkShow(missing)], [loDown], { netns: pod.path }).catch((e) => e);
    assert.instance(err, IpBatchError);
    assert.is((err as IpBatchError).stage, "host");
    assert.ok(loUp());
    const r = await ipBatchThenPod([linkShowIfExists(missing), linkShowIfExists("lo")], [linkShow("lo")], {
      netns: pod.path,
      podAfterHostFailure: true,
    });
    assert.is(r.host[0], undefined);
    assert.is((r.host[1]![0] as LinkRecord).ifname, "lo");
    assert.is((r.pod[0]![0] as LinkRecord).ifname, "lo");
  },
);

s("a pod failure names the pod stage and keeps the host reads", async () => {
  const err = await ipBatchThenPod([linkShow("lo")], [linkSetUp(uniqueName("wno"), "set it up")], {
    netns: pod.path,
  }).catch((e) => e);
  assert.instance(err, IpBatchError);
  assert.is((err as IpBatchError).stage, "pod");
  assert.is((err as IpBatchError).what, "set it up");
  assert.is(((err as IpBatchError).hostReads[0]![0] as LinkRecord).ifname, "lo");
});

s("ip exiting without a command number: its own words, not an exit status", async () => {
  // ip exits at once (status 255) when `master` names no link.
  const err = await ipBatch([{ line: `addr show master ${uniqueName("wno")}`, what: "x", read: true }]).catch(
    (e) => e,
  );
  assert.instance(err, IpBatchError);
  assert.is((err as IpBatchError).index, -1);
  assert.match((err as IpBatchError).reason, /Device does not exist/);
  assert.not.match((err as IpBatchError).message, /exited with/);
});

s.run();
