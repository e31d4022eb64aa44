import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseResolvConf } from "../../shared/ipam/dns.js";

const dir = mkdtempSync(join(tmpdir(), "weft-dns-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("resolv.conf: nameservers append, domain, all search and options tokens; comments skipped", () => {
  const path = join(dir, "resolv.conf");
  writeFileSync(
    path,
    "# comment\n; other\nnameserver 10.0.0.10\r\nnameserver  fd00::10\ndomain example.com\nsearch a.example b.example\nsearch c.example\noptions ndots:5 edns0\nnameserver\n\n",
  );
  assert.equal(parseResolvConf(path), {
    nameservers: ["10.0.0.10", "fd00::10"],
    domain: "example.com",
    search: ["a.example", "b.example", "c.example"],
    options: ["ndots:5", "edns0"],
  });
  let thrown: Error | undefined;
  try {
    parseResolvConf(join(dir, "missing"));
  } catch (err) {
    thrown = err as Error;
  }
  assert.is(thrown?.message, `open ${join(dir, "missing")}: no such file or directory`);
  assert.is(
    (thrown?.cause as NodeJS.ErrnoException | undefined)?.code,
    "ENOENT",
    "the errno error is the cause",
  );
});

test.run();
