import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { goFileError } from "../../shared/fs/go-errors.js";

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("no error");
}

test("a name over NAME_MAX is Go's 'file name too long', not Node's text (found by the fuzz test)", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-goerr-"));
  try {
    const path = join(dir, "a".repeat(300));
    const err = errorOf(() => mkdirSync(path, { recursive: true }));
    assert.is(goFileError(err, path, "mkdir").message, `mkdir ${path}: file name too long`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a NUL byte in a path is Go's EINVAL, not Node's argument check (found by the fuzz test)", () => {
  const path = "/tmp/\u0000/x";
  const err = errorOf(() => mkdirSync(path, { recursive: true }));
  assert.is(goFileError(err, path, "mkdir").message, `mkdir ${path}: invalid argument`);
});

test("an errno without a Go text of ours keeps libuv's description, in Go's layout", () => {
  const err = Object.assign(new Error("EWEIRD: something odd happened, open '/x'"), { code: "EWEIRD" });
  assert.is(goFileError(err, "/x").message, "open /x: something odd happened");
});

test("known errnos read as Go's syscall.Errno strings", () => {
  const err = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: "ENOENT" });
  assert.is(goFileError(err, "/x").message, "open /x: no such file or directory");
  const loop = Object.assign(new Error("ELOOP: too many symbolic links encountered, open '/x'"), {
    code: "ELOOP",
  });
  assert.is(goFileError(loop, "/x").message, "open /x: too many levels of symbolic links");
});

test.run();
