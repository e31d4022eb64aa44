import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadCniArgs, parseArgBool, splitCniArgs } from "../../shared/cni/args.js";
import { expectCniError } from "../helpers/cni-error.js";

// types.LoadArgs returns a plain error; skel reports it as ErrInternal (lab: host-local v1.1.1 prints 999).
function expectArgsError(fn: () => unknown, msg: string): void {
  expectCniError(fn, 999, msg);
}

test("K=V;K=V pairs in order", () => {
  assert.equal(splitCniArgs("IP=10.1.2.3;MAC=aa:bb:cc:dd:ee:ff"), [
    ["IP", "10.1.2.3"],
    ["MAC", "aa:bb:cc:dd:ee:ff"],
  ]);
  assert.equal(loadCniArgs("IP=10.1.2.3;MAC=aa:bb:cc:dd:ee:ff", ["IP", "MAC"]), {
    IP: "10.1.2.3",
    MAC: "aa:bb:cc:dd:ee:ff",
  });
});

test("an empty string has no pairs", () => {
  assert.equal(splitCniArgs(""), []);
  assert.equal(loadCniArgs("", ["IP"]), {});
});

test("an empty value is a value", () => {
  assert.equal(loadCniArgs("IP=", ["IP"]), { IP: "" });
});

test("a pair that does not split into exactly two parts", () => {
  expectArgsError(() => splitCniArgs("a"), 'ARGS: invalid pair "a"');
  expectArgsError(() => splitCniArgs("a=b=c"), 'ARGS: invalid pair "a=b=c"');
  // A trailing ';' leaves an empty pair.
  expectArgsError(() => loadCniArgs("IP=1;", ["IP"]), 'ARGS: invalid pair ""');
  // Go's %q, not JSON: control characters as \x escapes.
  expectArgsError(() => splitCniArgs("a\u0001"), 'ARGS: invalid pair "a\\x01"');
});

test("unknown keys fail, listed with Go's %q of a slice", () => {
  expectArgsError(() => loadCniArgs("K8S_POD_NAME=x", ["IP"]), 'ARGS: unknown args ["K8S_POD_NAME=x"]');
  expectArgsError(() => loadCniArgs("A=1;IP=2;B=3", ["IP"]), 'ARGS: unknown args ["A=1" "B=3"]');
});

test("keys are case-sensitive: ip= is unknown", () => {
  expectArgsError(() => loadCniArgs("ip=10.1.2.3", ["IP"]), 'ARGS: unknown args ["ip=10.1.2.3"]');
});

test("IgnoreUnknown=1/true/True (any case, as Go lower-cases) lets unknown keys pass", () => {
  for (const v of ["1", "true", "True", "TRUE"]) {
    const args = `IgnoreUnknown=${v};K8S_POD_NAMESPACE=ns;K8S_POD_NAME=x;IP=10.1.2.3`;
    assert.equal(loadCniArgs(args, ["IP"]), { IgnoreUnknown: v, IP: "10.1.2.3" });
  }
  // Order does not matter: the flag is read after all pairs.
  assert.equal(loadCniArgs("K8S_POD_NAME=x;IgnoreUnknown=1", []), { IgnoreUnknown: "1" });
});

test("IgnoreUnknown=0/false keeps the check; the last value wins", () => {
  expectArgsError(() => loadCniArgs("IgnoreUnknown=false;X=1", []), 'ARGS: unknown args ["X=1"]');
  expectArgsError(() => loadCniArgs("IgnoreUnknown=1;IgnoreUnknown=0;X=1", []), 'ARGS: unknown args ["X=1"]');
  expectArgsError(
    () => loadCniArgs("ignoreunknown=1;X=1", []),
    'ARGS: unknown args ["ignoreunknown=1" "X=1"]',
  );
});

test("an invalid IgnoreUnknown value", () => {
  expectArgsError(
    () => loadCniArgs("IgnoreUnknown=yes", []),
    'ARGS: error parsing value of pair "IgnoreUnknown=yes": boolean unmarshal error: invalid input yes',
  );
  // Go lower-cases the value before reporting it.
  expectArgsError(
    () => loadCniArgs("IgnoreUnknown=YES", []),
    'ARGS: error parsing value of pair "IgnoreUnknown=YES": boolean unmarshal error: invalid input yes',
  );
});

test("pairs are checked in order: the first bad pair is the error", () => {
  expectArgsError(
    () => loadCniArgs("IgnoreUnknown=x;a", []),
    'ARGS: error parsing value of pair "IgnoreUnknown=x": boolean unmarshal error: invalid input x',
  );
  expectArgsError(() => loadCniArgs("IgnoreUnknown=1;a", []), 'ARGS: invalid pair "a"');
  // An invalid pair beats unknown keys seen before it.
  expectArgsError(() => loadCniArgs("X=1;a", []), 'ARGS: invalid pair "a"');
});

test("the last occurrence of a key wins", () => {
  assert.equal(loadCniArgs("IP=1;IP=2", ["IP"]), { IP: "2" });
});

test("parseArgBool accepts Go's UnmarshallableBool values", () => {
  for (const v of ["1", "true", "True", "TRUE", "tRuE"]) assert.is(parseArgBool(v), true);
  for (const v of ["0", "false", "False", "FALSE"]) assert.is(parseArgBool(v), false);
  assert.throws(() => parseArgBool("yes"), /boolean unmarshal error: invalid input yes/);
});

test.run();
