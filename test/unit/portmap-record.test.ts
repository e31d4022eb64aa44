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
  readRecord,
  recordPath,
  recordRules,
  recordsOf,
  removeRecord,
  removeStaleRecords,
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
  recordRules(key, dir);
  assert.is(readRecord(key, dir), "rules");
  // A name too long for the file system: no record can exist, so the ADD goes on without one.
  recordRules({ ...key, containerId: "a".repeat(300) }, dir);
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
    assert.throws(() => recordRules(key, dir), /cannot replace the record/);
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

t.run();
