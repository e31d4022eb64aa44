import { test } from "uvu";
import * as assert from "uvu/assert";
import { MAX_DEPTH, plainOf, quoteChar, scanJson } from "../../shared/cni/json-scan.js";

/** The scanner's error text for a document, or undefined when it parses. */
function goJsonSyntaxError(text: Buffer): string | undefined {
  try {
    scanJson(text.toString("utf8"));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// Recorded by the fuzz work for a first syntax checker, kept as vectors for json-scan.ts.
// Every text below was fed to the reference bridge (v1.1.1, /usr/lib/cni) and its error msg recorded after
// "error unmarshall network config: ".
const LAB: Array<[string, string]> = [
  ["", "unexpected end of JSON input"],
  ["{", "unexpected end of JSON input"],
  ['{"a"', "unexpected end of JSON input"],
  ['{"a":', "unexpected end of JSON input"],
  ['{"a":1', "unexpected end of JSON input"],
  ['{"a":1,', "unexpected end of JSON input"],
  ['"', "unexpected end of JSON input"],
  ["x", "invalid character 'x' looking for beginning of value"],
  ['{"a":1}x', "invalid character 'x' after top-level value"],
  ['{"a":1} {}', "invalid character '{' after top-level value"],
  ["{,}", "invalid character ',' looking for beginning of object key string"],
  ['{"a" 1}', "invalid character '1' after object key"],
  ['{"a":1 "b":2}', "invalid character '\"' after object key:value pair"],
  ["[1 2]", "invalid character '2' after array element"],
  ['"\\x"', "invalid character 'x' in string escape code"],
  ['"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"],
  ["-", "invalid character ' ' in numeric literal"],
  ["-a", "invalid character 'a' in numeric literal"],
  ["1.", "invalid character ' ' after decimal point in numeric literal"],
  ["1.e", "invalid character 'e' after decimal point in numeric literal"],
  ["1e", "invalid character ' ' in exponent of numeric literal"],
  ["1e+", "invalid character ' ' in exponent of numeric literal"],
  ["tru", "invalid character ' ' in literal true (expecting 'e')"],
  ["trx", "invalid character 'x' in literal true (expecting 'u')"],
  ["nul", "invalid character ' ' in literal null (expecting 'l')"],
  ["nulx", "invalid character 'x' in literal null (expecting 'l')"],
  ["fals", "invalid character ' ' in literal false (expecting 'e')"],
  ["falsx", "invalid character 'x' in literal false (expecting 'e')"],
  ["nan", "invalid character 'a' in literal null (expecting 'u')"],
  ['{"a":01}', "invalid character '1' after object key:value pair"],
  ["'", "invalid character '\\'' looking for beginning of value"],
  ["\ufeff{}", "invalid character 'ï' looking for beginning of value"],
  ['"a\tb"', "invalid character '\\t' in string literal"],
  ["é", "invalid character 'Ã' looking for beginning of value"],
  ["\u0001", "invalid character '\\x01' looking for beginning of value"],
  ["\u00a0", "invalid character 'Â' looking for beginning of value"],
  ["[1,]", "invalid character ']' looking for beginning of value"],
  ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
  ['{"a":}', "invalid character '}' looking for beginning of value"],
  ["]", "invalid character ']' looking for beginning of value"],
  ["}", "invalid character '}' looking for beginning of value"],
  ['{"a":[}', "invalid character '}' looking for beginning of value"],
  ["+1", "invalid character '+' looking for beginning of value"],
  [".5", "invalid character '.' looking for beginning of value"],
  ['{"a":-}', "invalid character '}' in numeric literal"],
  ["0x10", "invalid character 'x' after top-level value"],
  ["1 2", "invalid character '2' after top-level value"],
];

test("Go's syntax error text for each lab vector", () => {
  for (const [text, msg] of LAB) {
    assert.is(goJsonSyntaxError(Buffer.from(text)), msg, JSON.stringify(text));
  }
});

test("valid JSON has no syntax error", () => {
  for (const text of ['{"a":[1,-2.5e+3,true,false,null,"\\u00e9\\n"],"b":{}}', " [] ", "0", '""']) {
    assert.is(goJsonSyntaxError(Buffer.from(text)), undefined, text);
  }
});

test("nesting deeper than weft's limit (Go: 10000 levels, weft: 1000) is Go's max-depth error", () => {
  assert.is(MAX_DEPTH, 1000);
  assert.is(goJsonSyntaxError(Buffer.from("[".repeat(1001))), "invalid character '[' exceeded max depth");
  assert.is(goJsonSyntaxError(Buffer.from("[".repeat(1000))), "unexpected end of JSON input");
  const deep = `{"name":"n","x":${"[".repeat(998)}${"]".repeat(998)}}`;
  assert.not.throws(() => JSON.stringify(plainOf(scanJson(deep))));
});

test("quoteChar escapes as strconv.Quote does, one byte as one rune", () => {
  assert.is(quoteChar(0x0a), "'\\n'");
  assert.is(quoteChar(0x5c), "'\\\\'");
  assert.is(quoteChar(0x7f), "'\\x7f'");
  assert.is(quoteChar(0x85), "'\\u0085'");
  assert.is(quoteChar(0xad), "'\\u00ad'");
  assert.is(quoteChar(0xff), "'ÿ'");
});

test.run();
