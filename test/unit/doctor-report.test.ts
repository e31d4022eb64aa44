import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  applyRepairs,
  type Check,
  exitCode,
  formatCheck,
  formatJson,
  formatText,
  ok,
  problem,
  skipped,
  summary,
} from "../../cli/doctor/report.js";

test("one line per check: status word first, id, finding, and the fix of a problem", () => {
  assert.is(formatCheck(ok("cni0-mtu", "1450, as FLANNEL_MTU")), "ok       cni0-mtu: 1450, as FLANNEL_MTU");
  assert.is(
    formatCheck(problem("route:10.244.2.0/24", "no route", "start weftd")),
    "PROBLEM  route:10.244.2.0/24: no route -> fix: start weftd",
  );
  assert.is(formatCheck(skipped("vxlan", "host-gw")), "skipped  vxlan: host-gw");
  // A message never breaks the one-line-per-check rule.
  assert.is(formatCheck(ok("x", "a\n  b\n")), "ok       x: a b");
});

test("a repaired problem reads FIXED with what was done, and no longer counts", () => {
  const c: Check = { ...problem("ip-forward", "is 0", "sysctl -w"), fixed: "set it to 1" };
  assert.is(formatCheck(c), "FIXED    ip-forward: is 0 -> done: set it to 1");
  assert.is(exitCode([c]), 0);
  assert.is(summary([c, ok("a", "b")]), "weft doctor: no problem found (2 checks, 1 fixed)");
});

test("exit status and summary: 0 without a problem, 1 with one, and how many --fix can repair", () => {
  assert.is(exitCode([ok("a", "b"), skipped("c", "d")]), 0);
  const checks = [ok("a", "b"), problem("p", "m", "f"), problem("q", "m", "f", async () => "done")];
  assert.is(exitCode(checks), 1);
  assert.is(summary(checks), "weft doctor: 2 problems (3 checks); 1 can be repaired by weft doctor --fix");
  assert.match(formatText(checks), /\nweft doctor: 2 problems/);
});

test("JSON: id, status, message, fix and fixed; never the repair function", () => {
  const doc = JSON.parse(
    formatJson([ok("a", "fine"), problem("b", "broken", "mend it", async () => "mended")]),
  ) as Record<string, unknown>;
  assert.equal(doc, {
    ok: false,
    problems: 1,
    fixed: 0,
    checks: [
      { id: "a", status: "ok", message: "fine" },
      { id: "b", status: "problem", message: "broken", fix: "mend it" },
    ],
  });
});

test("applyRepairs: runs each repair once; a failing one stays a problem with its reason", async () => {
  let runs = 0;
  const good = problem("a", "m", "f", async () => {
    runs += 1;
    return "released";
  });
  const bad = problem("b", "m", "rm it", async () => {
    throw new Error("EACCES");
  });
  const plain = problem("c", "m", "by hand");
  await applyRepairs([good, bad, plain, ok("d", "fine")]);
  assert.is(runs, 1);
  assert.is(good.fixed, "released");
  assert.is(bad.fixed, undefined);
  assert.is(bad.fix, "rm it (weft doctor --fix failed: EACCES)");
  assert.is(plain.fixed, undefined);
  assert.is(exitCode([good, bad, plain]), 1);
});

test.run();
