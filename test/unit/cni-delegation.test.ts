import { test } from "uvu";
import * as assert from "uvu/assert";
import { chainOnStart, delegationLoop, MAX_DELEGATION_DEPTH, mayEnter } from "../../shared/cni/delegation.js";
import { parseDelegation } from "../../shared/cni/env.js";
import { CniError } from "../../shared/cni/errors.js";
import { isRefusal, sameError } from "../../shared/cni/invoke.js";
import { cniErrorOf } from "../helpers/cni-error.js";

test("WEFT_DELEGATION: types joined by '/', empty parts ignored", () => {
  assert.equal(parseDelegation(undefined), []);
  assert.equal(parseDelegation(""), []);
  assert.equal(parseDelegation("flannel/bridge"), ["flannel", "bridge"]);
  assert.equal(parseDelegation("/flannel//bridge/"), ["flannel", "bridge"]);
});

test("a started plugin joins the chain unless its weft caller already named it", () => {
  assert.equal(chainOnStart([], "flannel"), ["flannel"]);
  assert.equal(chainOnStart(undefined, "flannel"), ["flannel"]);
  assert.equal(chainOnStart(["flannel", "bridge"], "bridge"), ["flannel", "bridge"]);
  // A foreign plugin in between passes the chain on without itself.
  assert.equal(chainOnStart(["bridge", "hop"], "bridge"), ["bridge", "hop", "bridge"]);
});

test("a repeated type or a chain longer than any real one is a config error naming the chain", () => {
  assert.is(delegationLoop(["flannel", "bridge", "host-local"]), undefined);
  const loop = delegationLoop(["flannel", "bridge", "flannel"])!;
  assert.instance(loop, CniError);
  assert.is(loop.code, 7);
  assert.is(loop.msg, "delegation loop: flannel -> bridge -> flannel");
  const long = Array.from({ length: MAX_DELEGATION_DEPTH + 1 }, (_, i) => `p${i}`);
  assert.is(delegationLoop(long.slice(0, -1)), undefined);
  assert.match(delegationLoop(long)!.msg, /^delegation too deep: p0 -> .* -> p8 \(more than 8 plugins\)$/);
});

test("through a loop, ADD, CHECK and STATUS throw; DEL and GC go no further and succeed", () => {
  const chain = ["bridge", "bridge"];
  for (const verb of ["ADD", "CHECK", "STATUS"] as const) {
    assert.is(cniErrorOf(() => mayEnter(verb, chain)).msg, "delegation loop: bridge -> bridge");
  }
  for (const verb of ["DEL", "GC"] as const) assert.is(mayEnter(verb, chain), false);
  assert.is(mayEnter("ADD", ["bridge", "host-local"]), true);
});

test("refusals: the spec's codes for a call refused as such; 999 and 11 may pass on a retry", () => {
  for (const code of [1, 2, 4, 6, 7]) assert.ok(isRefusal(new CniError(code, "x")), String(code));
  for (const code of [0, 3, 5, 11, 50, 999]) assert.not.ok(isRefusal(new CniError(code, "x")), String(code));
  assert.not.ok(isRefusal(new Error("plain")));
  assert.ok(sameError(new CniError(999, "a", "d"), new CniError(999, "a", "d")));
  assert.not.ok(sameError(new CniError(999, "a"), new CniError(999, "a", "d")));
  assert.not.ok(sameError(new CniError(999, "a"), new CniError(11, "a")));
});

test.run();
