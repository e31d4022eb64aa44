import { test } from "uvu";
import * as assert from "uvu/assert";
import { type JsonNumber, JsonObject, nodeOf, plainOf, scanJson } from "../../shared/cni/json-scan.js";

/** Each text with the error Go's json.Unmarshal (Go 1.19, Debian's golang-go) reported for it. */
const GO_SYNTAX_ERRORS: Array<[string, string]> = [
  ['{"name":', "unexpected end of JSON input"],
  ['{"name" 1}', "invalid character '1' after object key"],
  ['{"a":1 "b"}', "invalid character '\"' after object key:value pair"],
  ["[1 2]", "invalid character '2' after array element"],
  ["{,}", "invalid character ',' looking for beginning of object key string"],
  ["nul", "invalid character ' ' in literal null (expecting 'l')"],
  ['{"a":tru}', "invalid character '}' in literal true (expecting 'e')"],
  ['{"a":-}', "invalid character '}' in numeric literal"],
  ['{"a":1.}', "invalid character '}' after decimal point in numeric literal"],
  ['{"a":1e}', "invalid character '}' in exponent of numeric literal"],
  ['{"a":"\\q"}', "invalid character 'q' in string escape code"],
  ['{"a":"\\u12G4"}', "invalid character 'G' in \\u hexadecimal character escape"],
  ['{"a":"\x01"}', "invalid character '\\x01' in string literal"],
  ["{} x", "invalid character 'x' after top-level value"],
  ["01", "invalid character '1' after top-level value"],
  ["'x'", "invalid character '\\'' looking for beginning of value"],
  ['{"a":1}}', "invalid character '}' after top-level value"],
  ["", "unexpected end of JSON input"],
  ["   ", "unexpected end of JSON input"],
  ['{"a":[1,]}', "invalid character ']' looking for beginning of value"],
  ['{"a":0x1}', "invalid character 'x' after object key:value pair"],
];

test("syntax errors read as Go's scanner words them", () => {
  for (const [text, want] of GO_SYNTAX_ERRORS) {
    assert.throws(
      () => scanJson(text),
      (err: Error) => err.message === want,
      `${JSON.stringify(text)}: want ${want}`,
    );
  }
});

test("objects keep every member in order, duplicates included; numbers keep their text", () => {
  const doc = scanJson('{"a":1,"A":2,"a":3e0,"n":[-0.5,null,true,"s\\u00e9"]}') as JsonObject;
  assert.instance(doc, JsonObject);
  assert.equal(
    doc.members.map(([k]) => k),
    ["a", "A", "a", "n"],
  );
  assert.is((doc.members[2]![1] as JsonNumber).text, "3e0");
  assert.equal(plainOf(doc), { a: 3, A: 2, n: [-0.5, null, true, "sé"] });
});

test("escapes decode as Go decodes them: surrogate pairs join, a lone surrogate is U+FFFD", () => {
  assert.is(scanJson('"\\ud83d\\ude00"'), "😀");
  assert.is(scanJson('"a\\ud83db"'), "a\ufffdb");
  assert.is(scanJson('"\\/\\b\\f\\n\\r\\t"'), "/\b\f\n\r\t");
});

test("a member named __proto__ is data, not the prototype", () => {
  const v = plainOf(scanJson('{"__proto__":{"polluted":1}}')) as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(v), Object.prototype);
  assert.equal(Object.keys(v), ["__proto__"]);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test("nodeOf re-reads a map as Go re-reads what it marshalled: keys sorted", () => {
  const node = nodeOf({ b: 1, a: { d: 2, C: 3 } }) as JsonObject;
  assert.equal(
    node.members.map(([k]) => k),
    ["a", "b"],
  );
  assert.equal(
    (node.members[0]![1] as JsonObject).members.map(([k]) => k),
    ["C", "d"],
  );
});

test.run();
