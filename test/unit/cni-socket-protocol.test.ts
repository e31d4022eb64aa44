import { suite } from "uvu";
import * as assert from "uvu/assert";
import { MAX_REQUEST_BYTES, MAX_STDIN_BYTES } from "../../shared/cni/socket-protocol.js";
import { checkStdinSize, STDIN_LIMIT } from "../../shared/cni/stdin.js";
import { cniErrorOf } from "../helpers/cni-error.js";

const t = suite("the CNI socket's limits");

t("the client forwards exactly what a plugin accepts on stdin", () => {
  assert.is(MAX_STDIN_BYTES, STDIN_LIMIT);
});

t("a request with the largest stdin (base64) and a full environment fits the daemon's cap", () => {
  const stdin = Math.ceil(MAX_STDIN_BYTES / 3) * 4;
  // The kernel's cap on arguments plus environment with the default 8 MiB stack.
  const env = 2 * 1024 * 1024;
  assert.ok(stdin + env < MAX_REQUEST_BYTES, `${stdin} + ${env} < ${MAX_REQUEST_BYTES}`);
});

t("stdin read ahead (the thin client's) is held to the plugin's limit with the plugin's error", () => {
  assert.is(checkStdinSize(Buffer.alloc(10), 10).length, 10);
  const e = cniErrorOf(() => checkStdinSize(Buffer.alloc(11), 10));
  assert.is(e.code, 5);
  assert.is(e.msg, "error reading from stdin: input exceeds 10 bytes");
});

t.run();
