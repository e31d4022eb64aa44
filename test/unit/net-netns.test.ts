import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkNetnsPath, NetnsPathError } from "../../shared/net/netns.js";

const dir = mkdtempSync(join(tmpdir(), "weft-netns-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function thrownBy(path: string): NetnsPathError {
  let thrown: unknown;
  try {
    checkNetnsPath(path);
  } catch (err) {
    thrown = err;
  }
  assert.instance(thrown, NetnsPathError);
  return thrown as NetnsPathError;
}

test("a missing path: the reference's words, notExist, and the errno error as the cause", () => {
  const path = join(dir, "gone");
  const e = thrownBy(path);
  assert.is(e.message, `failed to Statfs ${JSON.stringify(path)}: no such file or directory`);
  assert.ok(e.notExist);
  assert.is((e.cause as NodeJS.ErrnoException).code, "ENOENT");
});

test("a file that is no namespace (what a runtime's bind mount leaves behind) is not one", () => {
  const path = join(dir, "plain");
  writeFileSync(path, "");
  const e = thrownBy(path);
  assert.match(e.message, /^unknown FS magic on /);
  assert.not.ok(e.notExist);
});

test.run();
