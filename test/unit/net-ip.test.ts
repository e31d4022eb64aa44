import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseBatchErrors, reasonOf } from "../../shared/net/ip.js";
import { q } from "../../shared/net/link.js";

test("batch stderr splits into failures by command number", () => {
  const stderr =
    'RTNETLINK answers: File exists\nCommand failed -:3\nDevice "x" does not exist.\nCommand failed -:5\n';
  assert.equal(parseBatchErrors(stderr), [
    { lineNo: 3, message: "RTNETLINK answers: File exists" },
    { lineNo: 5, message: 'Device "x" does not exist.' },
  ]);
  // A malformed argument aborts the batch without a command number.
  assert.equal(parseBatchErrors('Error: argument "x y" is wrong: "dev" not a valid ifname\n'), [
    { lineNo: 0, message: 'Error: argument "x y" is wrong: "dev" not a valid ifname' },
  ]);
  assert.equal(parseBatchErrors(""), []);
});

test("kernel messages read as the reference's Go errno text", () => {
  assert.is(reasonOf("RTNETLINK answers: File exists"), "file exists");
  assert.is(reasonOf("RTNETLINK answers: Numerical result out of range"), "numerical result out of range");
  assert.is(reasonOf("Error: Nexthop has invalid gateway."), "Nexthop has invalid gateway.");
});

test("names are quoted for ip's batch parser only when needed", () => {
  assert.is(q("veth1234abcd"), "veth1234abcd");
  assert.is(q("br-0.1"), "br-0.1");
  assert.is(q("a b"), '"a b"');
  assert.is(q('a"b'), '"a\\"b"');
});

test.run();
