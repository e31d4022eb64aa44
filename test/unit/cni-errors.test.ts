import { test } from "uvu";
import * as assert from "uvu/assert";
import { CniError, ErrorCode, toCniError, wrapError } from "../../shared/cni/errors.js";
import { goQuote, goQuoteList } from "../../shared/cni/goquote.js";
import { rootCause } from "../helpers/cni-error.js";

test("the spec's codes and the Go library's extras", () => {
  assert.equal(ErrorCode, {
    IncompatibleVersion: 1,
    UnsupportedField: 2,
    UnknownContainer: 3,
    InvalidEnvironment: 4,
    IOFailure: 5,
    DecodingFailure: 6,
    InvalidNetworkConfig: 7,
    InvalidNetNS: 8,
    TryAgainLater: 11,
    PluginNotAvailable: 50,
    LimitedConnectivity: 51,
    Internal: 999,
  });
});

test("error document: cniVersion, code, msg, details, in that order", () => {
  const e = new CniError(7, "invalid config", "no name");
  const doc = e.toJSON("1.0.0");
  assert.equal(doc, { cniVersion: "1.0.0", code: 7, msg: "invalid config", details: "no name" });
  assert.equal(Object.keys(doc), ["cniVersion", "code", "msg", "details"]);
});

test("details omitted when empty; cniVersion omitted when not given (as skel prints it)", () => {
  const e = new CniError(4, "required env variables [CNI_PATH] missing");
  assert.equal(e.toJSON("0.4.0"), {
    cniVersion: "0.4.0",
    code: 4,
    msg: "required env variables [CNI_PATH] missing",
  });
  assert.is(JSON.stringify(e), '{"code":4,"msg":"required env variables [CNI_PATH] missing"}');
});

test("JSON.stringify of a nested error does not take the property name for a version", () => {
  const e = new CniError(5, "io");
  assert.is(JSON.stringify({ err: e }), '{"err":{"code":5,"msg":"io"}}');
});

test("Error() text is msg; details, like types.Error", () => {
  assert.is(
    new CniError(1, "incompatible CNI versions", "config is x").message,
    "incompatible CNI versions; config is x",
  );
  assert.is(new CniError(1, "m").message, "m");
  assert.is(new CniError(1, "m").name, "CniError");
});

test("toCniError: a CniError stays as it is (skel does not wrap twice)", () => {
  const e = new CniError(11, "later", "d");
  assert.is(toCniError(e), e);
});

test("toCniError: a plain Error or anything else becomes code 999", () => {
  const plain = toCniError(new Error("boom"));
  assert.equal([plain.code, plain.msg, plain.details], [999, "boom", ""]);
  const sys = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: "ENOENT" });
  assert.equal(
    [toCniError(sys).code, toCniError(sys).msg],
    [999, "ENOENT: no such file or directory, open '/x'"],
  );
  assert.equal([toCniError("text").code, toCniError("text").msg], [999, "text"]);
  assert.equal([toCniError(42).code, toCniError(42).msg], [999, "42"]);
});

test("wrapError prefixes context and keeps code and details", () => {
  const inner = new CniError(7, "bad range", "10.0.0.0/33");
  const w = wrapError("failed to load netconf", inner);
  assert.equal([w.code, w.msg, w.details], [7, "failed to load netconf: bad range", "10.0.0.0/33"]);
  const p = wrapError("failed to set bridge addr", new Error("file exists"));
  assert.equal([p.code, p.msg], [999, "failed to set bridge addr: file exists"]);
});

test("toCniError and wrapError keep what they wrap as the cause (a retrying caller reads its kind)", () => {
  const sys = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:2379"), { code: "ECONNREFUSED" });
  assert.is(toCniError(sys).cause, sys);
  assert.is(toCniError("text").cause, "text");
  const inner = wrapError("failed to read lease", sys);
  const outer = wrapError("failed to acquire lease", inner);
  assert.is(inner.cause, sys);
  assert.is(outer.cause, inner);
  assert.is(outer.msg, "failed to acquire lease: failed to read lease: connect ECONNREFUSED 127.0.0.1:2379");
  // The chain reaches the system error whatever the depth.
  assert.is(rootCause(outer), sys);
  // A CNI error passed through as it is keeps its own cause; one without stays without.
  const plain = new CniError(7, "bad");
  assert.is(toCniError(plain), plain);
  assert.is(plain.cause, undefined);
  assert.not.ok("cause" in plain);
});

test("the cause is not part of the error document", () => {
  const w = wrapError("ctx", new Error("boom"));
  assert.equal(w.toJSON("1.0.0"), { cniVersion: "1.0.0", code: 999, msg: "ctx: boom" });
  assert.is(JSON.stringify(w), '{"code":999,"msg":"ctx: boom"}');
});

test("goQuote is Go's %q", () => {
  assert.is(goQuote("plain"), '"plain"');
  assert.is(goQuote('a"b\\c'), '"a\\"b\\\\c"');
  assert.is(goQuote("\u0007\b\f\n\r\t\v"), '"\\a\\b\\f\\n\\r\\t\\v"');
  assert.is(goQuote("a\u0001\u007f"), '"a\\x01\\x7f"');
  // Printable Unicode stays, non-printing becomes \u (outputs checked against Go 1.19).
  assert.is(goQuote("é"), '"é"');
  assert.is(goQuote("\u00a0\u200b\ufeff"), '"\\u00a0\\u200b\\ufeff"');
  assert.is(goQuote("\u{e0001}"), '"\\U000e0001"');
  assert.is(goQuoteList(["a=1", "b"]), '["a=1" "b"]');
  assert.is(goQuoteList([]), "[]");
});

test.run();
