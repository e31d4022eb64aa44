import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  type AttachmentKey,
  RECORD_DIR,
  type RecordState,
  readRecord,
  readRecordState,
  recordPath,
  recordRules,
  recordsOf,
  removeRecord,
  removeStaleRecords,
  type Teardown,
  teardownAfter,
  writeRecord,
} from "../../plugins/portmap/record.js";

const root = mkdtempSync(join(tmpdir(), "weft-pmrec-"));
let n = 0;
/** A fresh records directory per test. */
const fresh = () => join(root, String(n++));
const key: AttachmentKey = { network: "cbr0", containerId: "ctr1", ifname: "eth0" };

const t = suite("portmap attachment records");
t.after(() => rmSync(root, { recursive: true, force: true }));

t("one file per attachment, in a weft directory of /run that the reboot empties", () => {
  assert.is(RECORD_DIR, "/run/weft/portmap");
  assert.is(recordPath(key, "/d"), "/d/cbr0/ctr1:eth0");
  // ":" is in neither a container ID nor an ifname (skel), so two attachments never share a file.
  assert.is.not(
    recordPath({ network: "n", containerId: "a-b", ifname: "c" }, "/d"),
    recordPath({ network: "n", containerId: "a", ifname: "b-c" }, "/d"),
  );
});

t("written, read back, removed with its network's directory once empty; 0600 in 0700", () => {
  const dir = fresh();
  assert.is(readRecord(key, dir), undefined);
  writeRecord(key, "none", dir);
  assert.is(readRecord(key, dir), "none");
  assert.is(statSync(recordPath(key, dir)).mode & 0o777, 0o600);
  assert.is(statSync(dirname(recordPath(key, dir))).mode & 0o777, 0o700);
  writeRecord(key, "rules", dir);
  assert.is(readRecord(key, dir), "rules");
  const other = { ...key, ifname: "net1" };
  writeRecord(other, "none", dir);
  removeRecord(key, dir);
  assert.is(readRecord(key, dir), undefined);
  assert.ok(existsSync(join(dir, "cbr0")), "kept while another record is in it");
  removeRecord(other, dir);
  assert.not.ok(existsSync(join(dir, "cbr0")));
  removeRecord(other, dir); // nothing there: fine
});

t("a record that is not this attachment's, not this netns's, or not whole says nothing", () => {
  const dir = fresh();
  writeRecord(key, "none", dir);
  const path = recordPath(key, dir);
  const doc = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  assert.is(doc.netns, statSync("/proc/self/ns/net").ino);
  for (const bad of [
    { ...doc, netns: (doc.netns as number) + 1 },
    { ...doc, containerId: "ctr2" },
    { ...doc, network: "other" },
    { ...doc, ifname: "eth1" },
    { ...doc, installed: "maybe" },
  ]) {
    writeFileSync(path, JSON.stringify(bad));
    assert.is(readRecord(key, dir), undefined, JSON.stringify(bad));
  }
  writeFileSync(path, JSON.stringify(doc).slice(0, 20));
  assert.is(readRecord(key, dir), undefined, "torn");
});

t("recordRules replaces 'none'; when it cannot write, it fails only if a 'none' record would stay", () => {
  const dir = fresh();
  writeRecord(key, "none", dir);
  recordRules(key, undefined, dir);
  assert.is(readRecord(key, dir), "rules");
  // A name too long for the file system: no record can exist, so the ADD goes on without one.
  recordRules({ ...key, containerId: "a".repeat(300) }, undefined, dir);
  // A directory the record cannot be replaced in, holding a "none" record, stops the ADD: read-only by
  // its mode, or (root ignores modes) by a read-only bind mount over it.
  writeRecord(key, "none", dir);
  const netDir = join(dir, "cbr0");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    execFileSync("mount", ["--bind", netDir, netDir]);
    execFileSync("mount", ["-o", "remount,bind,ro", netDir]);
  } else chmodSync(netDir, 0o500);
  try {
    assert.throws(() => recordRules(key, undefined, dir), /cannot replace the record/);
    assert.is(readRecord(key, dir), "none");
  } finally {
    if (asRoot) execFileSync("umount", [netDir]);
    else chmodSync(netDir, 0o700);
  }
});

t("recordsOf: a network's records written in one network namespace (purge, test cleanup)", () => {
  const dir = fresh();
  const a = { ...key, containerId: "a" };
  const b = { ...key, containerId: "b" };
  writeRecord(a, "none", dir);
  writeRecord(b, "rules", dir);
  writeRecord({ ...key, network: "other" }, "none", dir);
  const pathB = recordPath(b, dir);
  const doc = JSON.parse(readFileSync(pathB, "utf8")) as { netns: number };
  writeFileSync(pathB, JSON.stringify({ ...doc, netns: doc.netns + 1 }));
  assert.equal(recordsOf("cbr0", doc.netns, dir), [recordPath(a, dir)]);
  assert.equal(recordsOf("cbr0", doc.netns + 1, dir), [pathB]);
  assert.equal(recordsOf("nothing", doc.netns, dir), []);
});

t("GC removes the records of a network's attachments that are not valid, only those", () => {
  const dir = fresh();
  const a = { ...key, containerId: "a" };
  const b = { ...key, containerId: "b" };
  const elsewhere = { ...key, network: "other", containerId: "a" };
  for (const k of [a, b, elsewhere]) writeRecord(k, "none", dir);
  mkdirSync(join(dir, "cbr0"), { recursive: true });
  writeFileSync(join(dir, "cbr0", ".b:eth0.tmp-123"), "");
  assert.is(removeStaleRecords("cbr0", [{ containerID: "b", ifname: "eth0" }], dir), 1);
  assert.is(readRecord(a, dir), undefined);
  assert.is(readRecord(b, dir), "none");
  assert.is(readRecord(elsewhere, dir), "none");
  assert.ok(existsSync(join(dir, "cbr0", ".b:eth0.tmp-123")), "a write in progress is left alone");
  assert.is(removeStaleRecords("nothing-here", [], dir), 0);
});

const CHAIN = "CNI-DN-9cccacf967e00a3c04e26";
const v4: Teardown["families"][4] = {
  restore: [
    `-D CNI-HOSTPORT-DNAT -m comment --comment "dnat name: \\"cbr0\\" id: \\"ctr1\\"" -m multiport -p udp --destination-ports 5353 -j ${CHAIN}`,
    `-F ${CHAIN}`,
    `-X ${CHAIN}`,
  ],
  udp: [5353],
};
const v6: Teardown["families"][6] = { restore: [`-F ${CHAIN}`, `-X ${CHAIN}`], udp: [] };
const teardown: Teardown = { backend: "iptables", families: { 4: v4 } };

t("a record of rules carries the ADD's teardown, read back as written; 'none' carries none", () => {
  const dir = fresh();
  writeRecord(key, { installed: "rules", teardown }, dir);
  assert.equal(readRecordState(key, dir), { installed: "rules", teardown });
  assert.is(readRecord(key, dir), "rules");
  const doc = JSON.parse(readFileSync(recordPath(key, dir), "utf8")) as Record<string, unknown>;
  assert.equal(doc.teardown, teardown, "one JSON document: the teardown next to what the record said before");
  assert.is(doc.installed, "rules");
  writeRecord(key, { installed: "none", teardown }, dir);
  assert.equal(readRecordState(key, dir), { installed: "none" });
  assert.not.ok("teardown" in JSON.parse(readFileSync(recordPath(key, dir), "utf8")));
  recordRules(key, teardown, dir);
  assert.equal(readRecordState(key, dir), { installed: "rules", teardown });
  recordRules(key, undefined, dir);
  assert.equal(readRecordState(key, dir), { installed: "rules" }, "a later ADD that knows none drops it");
});

t(
  "a record of the previous version (rules, no teardown) and a teardown not whole mean: read the tables",
  () => {
    const dir = fresh();
    writeRecord(key, "rules", dir);
    const path = recordPath(key, dir);
    const doc = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    // Exactly what the previous version wrote.
    assert.equal(Object.keys(doc).sort(), ["containerId", "ifname", "installed", "netns", "network"]);
    assert.equal(readRecordState(key, dir), { installed: "rules" });
    const broken: unknown[] = [
      null,
      "lines",
      { families: { 4: v4 } },
      { backend: "nftables", families: { 4: v4 } },
      { backend: "iptables" },
      { backend: "iptables", families: {} },
      { backend: "iptables", families: { 5: v4 } },
      { backend: "iptables", families: { 4: null } },
      { backend: "iptables", families: { 4: { ...v4, restore: [] } } },
      { backend: "iptables", families: { 4: { ...v4, restore: "-F x" } } },
      {
        backend: "iptables",
        families: { 4: { ...v4, restore: [`-F ${CHAIN}\nCOMMIT\n*filter`, `-X ${CHAIN}`] } },
      },
      { backend: "iptables", families: { 4: { ...v4, restore: [`-F ${CHAIN}\r`, 7] } } },
      { backend: "iptables", families: { 4: { ...v4, udp: [0] } } },
      { backend: "iptables", families: { 4: { ...v4, udp: [65536] } } },
      { backend: "iptables", families: { 4: { ...v4, udp: ["53"] } } },
      { backend: "iptables", families: { 4: { restore: v4.restore } } },
      { backend: "iptables", families: { 4: v4, 6: { udp: [] } } },
    ];
    for (const bad of broken) {
      writeFileSync(path, JSON.stringify({ ...doc, teardown: bad }));
      assert.equal(readRecordState(key, dir), { installed: "rules" }, JSON.stringify(bad));
    }
    writeFileSync(
      path,
      JSON.stringify({ ...doc, teardown: { backend: "iptables", families: { 4: v4, 6: v6 } } }),
    );
    assert.equal(readRecordState(key, dir)?.teardown?.families, { 4: v4, 6: v6 });
    // Another netns's record, with a teardown, is still no record here.
    writeFileSync(path, JSON.stringify({ ...doc, netns: (doc.netns as number) + 1, teardown }));
    assert.is(readRecordState(key, dir), undefined);
  },
);

t("teardownAfter: a repeated ADD keeps the earlier teardown of a family it does not touch", () => {
  const both: Teardown = { backend: "iptables", families: { 4: v4, 6: v6 } };
  const only6: Teardown = { backend: "iptables", families: { 6: v6 } };
  const none: RecordState = { installed: "none" };
  assert.equal(teardownAfter(undefined, teardown), teardown, "first ADD: its own");
  assert.equal(teardownAfter(none, teardown), teardown, "after an ADD that installed nothing");
  assert.is(teardownAfter(undefined, undefined), undefined, "a backend without one (nft)");
  assert.is(teardownAfter({ installed: "rules", teardown }, undefined), undefined);
  assert.equal(teardownAfter({ installed: "rules", teardown: only6 }, teardown), both);
  const v4b = { restore: [`-F ${CHAIN}`, `-X ${CHAIN}`], udp: [] };
  assert.equal(
    teardownAfter({ installed: "rules", teardown: both }, { backend: "iptables", families: { 4: v4b } }),
    { backend: "iptables", families: { 4: v4b, 6: v6 } },
    "the family the ADD planned again is replaced (its rules were)",
  );
  // Rules of the attachment that no teardown describes (a record of the previous version): unknown.
  assert.is(teardownAfter({ installed: "rules" }, teardown), undefined);
});

t.run();
