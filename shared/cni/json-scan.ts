/**
 * JSON text read the way Go's encoding/json reads it, for the config documents the reference plugins
 * decode. Two things JSON.parse cannot give:
 * - every object keeps all of its members in document order, duplicates included, because Go decodes
 *   `{"hostPort":1,"HostPort":2}` member by member into one struct field (the last one wins, and a
 *   struct value met twice is merged, not replaced);
 * - numbers keep their literal text, because Go decodes `1e3` or `99999999999999999999` into an `int`
 *   field as an error, not as 1000 or 1e20.
 * Syntax errors carry Go's scanner texts ("invalid character '}' looking for beginning of object key
 * string", "unexpected end of JSON input"), which is what users paste into searches.
 */

/** A JSON number with its literal text. */
export class JsonNumber {
  constructor(readonly text: string) {}
  get value(): number {
    return Number(this.text);
  }
}

/** A JSON object: its members in document order, duplicate names kept. */
export class JsonObject {
  constructor(readonly members: Array<[string, JsonNode]>) {}
}

export type JsonNode = null | boolean | string | JsonNumber | JsonNode[] | JsonObject;

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = "JsonSyntaxError";
  }
}

/** Go's strconv.IsPrint for U+0000..U+00FF (a byte as Go's quoteChar sees it: string(byte) is a rune). */
function isPrintLatin1(c: number): boolean {
  return (c >= 0x20 && c < 0x7f) || (c >= 0xa1 && c !== 0xad);
}

const NAMED_ESCAPES: Record<number, string> = {
  7: "\\a",
  8: "\\b",
  9: "\\t",
  10: "\\n",
  11: "\\v",
  12: "\\f",
  13: "\\r",
};

/**
 * json's quoteChar: the offending byte as a Go rune in single quotes, escaped as strconv.Quote escapes
 * it. Go scans bytes, so a non-ASCII character is named by its first UTF-8 byte ("é" -> 'Ã').
 */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  if (c === 0x5c) return "'\\\\'";
  if (NAMED_ESCAPES[c]) return `'${NAMED_ESCAPES[c]}'`;
  if (isPrintLatin1(c)) return `'${String.fromCharCode(c)}'`;
  if (c < 0x80) return `'\\x${c.toString(16).padStart(2, "0")}'`;
  return `'\\u${c.toString(16).padStart(4, "0")}'`;
}

/**
 * Nesting deeper than this is refused with Go's "exceeded max depth" text. Go's limit is 10000; weft's
 * is lower because JavaScript's own recursive walks (JSON.stringify of a result or a saved config) run
 * out of stack at a few thousand levels, and no config is nested beyond a handful.
 */
export const MAX_DEPTH = 1000;

/**
 * Scanner states in which the space Go feeds at end of input is itself an error; in every other state
 * the end of input reads "unexpected end of JSON input" (scanner.eof).
 */
const SPACE_FAILS =
  /^(in literal|in numeric literal|after decimal point|in exponent|in string escape|in \\u)/;

const WS = new Set([" ", "\t", "\n", "\r"]);

class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  fail(context: string): never {
    if (this.i >= this.s.length && !SPACE_FAILS.test(context)) {
      throw new JsonSyntaxError("unexpected end of JSON input", this.i);
    }
    const c = this.i >= this.s.length ? " " : String.fromCodePoint(this.s.codePointAt(this.i)!);
    const byte = c.charCodeAt(0) < 0x80 ? c.charCodeAt(0) : Buffer.from(c)[0]!;
    throw new JsonSyntaxError(`invalid character ${quoteChar(byte)} ${context}`, this.i);
  }

  skipSpace(): void {
    while (this.i < this.s.length && WS.has(this.s[this.i]!)) this.i++;
  }

  /** A scalar at the cursor, or undefined when the cursor opens an array or object. */
  scalar(): JsonNode | undefined {
    this.skipSpace();
    const c = this.s[this.i];
    switch (c) {
      case "{":
      case "[":
        return undefined;
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
        return this.fail("looking for beginning of value");
    }
  }

  literal<T>(word: string, v: T): T {
    for (let k = 0; k < word.length; k++) {
      if (this.s[this.i] !== word[k]) {
        if (k === 0) this.fail("looking for beginning of value");
        this.fail(`in literal ${word} (expecting ${quoteChar(word.charCodeAt(k))})`);
      }
      this.i++;
    }
    return v;
  }

  digits(): number {
    const start = this.i;
    while (this.i < this.s.length && this.s[this.i]! >= "0" && this.s[this.i]! <= "9") this.i++;
    return this.i - start;
  }

  number(): JsonNumber {
    const start = this.i;
    if (this.s[this.i] === "-") {
      this.i++;
      const c = this.s[this.i];
      if (c === undefined || c < "0" || c > "9") this.fail("in numeric literal");
    }
    if (this.s[this.i] === "0") this.i++;
    else this.digits();
    if (this.s[this.i] === ".") {
      this.i++;
      if (this.digits() === 0) this.fail("after decimal point in numeric literal");
    }
    if (this.s[this.i] === "e" || this.s[this.i] === "E") {
      this.i++;
      if (this.s[this.i] === "+" || this.s[this.i] === "-") this.i++;
      if (this.digits() === 0) this.fail("in exponent of numeric literal");
    }
    return new JsonNumber(this.s.slice(start, this.i));
  }

  string(): string {
    this.i++; // the opening quote
    let out = "";
    let run = this.i;
    for (;;) {
      if (this.i >= this.s.length) this.fail("in string literal");
      const c = this.s.charCodeAt(this.i);
      if (c === 0x22) {
        out += this.s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail("in string literal");
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += this.s.slice(run, this.i);
      this.i++;
      const e = this.s[this.i];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.i++;
      } else if (e === "u") {
        this.i++;
        out += this.unicodeEscape();
      } else {
        this.fail("in string escape code");
      }
      run = this.i;
    }
  }

  hex4(): number {
    for (let k = 0; k < 4; k++) {
      if (!/[0-9a-fA-F]/.test(this.s[this.i + k] ?? "")) {
        this.i += k;
        this.fail("in \\u hexadecimal character escape");
      }
    }
    const v = Number.parseInt(this.s.slice(this.i, this.i + 4), 16);
    this.i += 4;
    return v;
  }

  /** A \uXXXX escape; Go turns a lone surrogate into U+FFFD, as it does invalid UTF-8. */
  unicodeEscape(): string {
    const hi = this.hex4();
    if (hi < 0xd800 || hi > 0xdfff) return String.fromCharCode(hi);
    if (hi <= 0xdbff && this.s.startsWith("\\u", this.i)) {
      const save = this.i;
      this.i += 2;
      const lo = this.hex4();
      if (lo >= 0xdc00 && lo <= 0xdfff) return String.fromCharCode(hi, lo);
      this.i = save;
    }
    return "\ufffd";
  }

  /**
   * One value, arrays and objects included, without recursion (an explicit stack of open containers),
   * so a deeply nested document ends in Go's "exceeded max depth" rather than a JavaScript stack overflow.
   */
  value(): JsonNode {
    type Open = { list: JsonNode[] } | { members: Array<[string, JsonNode]>; key: string };
    const stack: Open[] = [];
    for (;;) {
      // Read a value: a scalar, or open a container (and read its first key or see it close at once).
      let v = this.scalar();
      if (v === undefined) {
        if (stack.length >= MAX_DEPTH) this.fail("exceeded max depth");
        const isArray = this.s[this.i] === "[";
        this.i++;
        this.skipSpace();
        if (isArray) {
          if (this.s[this.i] !== "]") {
            stack.push({ list: [] });
            continue;
          }
          this.i++;
          v = [];
        } else {
          if (this.s[this.i] !== "}") {
            stack.push({ members: [], key: this.key() });
            continue;
          }
          this.i++;
          v = new JsonObject([]);
        }
      }
      // Store it, then close every container that ends here.
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return v;
        if ("list" in top) top.list.push(v);
        else top.members.push([top.key, v]);
        this.skipSpace();
        const c = this.s[this.i];
        const close = "list" in top ? "]" : "}";
        if (c === ",") {
          this.i++;
          if (!("list" in top)) top.key = this.key();
          break;
        }
        if (c !== close) this.fail("list" in top ? "after array element" : "after object key:value pair");
        this.i++;
        stack.pop();
        v = "list" in top ? top.list : new JsonObject(top.members);
      }
    }
  }

  /** An object key and its colon. */
  key(): string {
    this.skipSpace();
    if (this.s[this.i] !== '"') this.fail("looking for beginning of object key string");
    const key = this.string();
    this.skipSpace();
    if (this.s[this.i] !== ":") this.fail("after object key");
    this.i++;
    return key;
  }
}

/** Parses a whole document (Go's Unmarshal: one value, optional surrounding white space). */
export function scanJson(text: string): JsonNode {
  const sc = new Scanner(text);
  const v = sc.value();
  sc.skipSpace();
  if (sc.i < text.length) sc.fail("after top-level value");
  return v;
}

/** Sets a member, one named `__proto__` included, as an own property (as JSON.parse does). */
export function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/**
 * The node as Go decodes it into an `interface{}`: objects become maps (a repeated name keeps its last
 * value), numbers float64.
 */
export function plainOf(node: JsonNode): unknown {
  if (node instanceof JsonNumber) return node.value;
  if (node instanceof JsonObject) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of node.members) put(out, k, plainOf(v));
    return out;
  }
  if (Array.isArray(node)) return node.map(plainOf);
  return node;
}

/**
 * A plain value as a node, the way Go re-reads a `map[string]interface{}` it marshalled: members in
 * sorted key order (json.Marshal sorts map keys), numbers in their shortest text.
 */
export function nodeOf(value: unknown): JsonNode {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return new JsonNumber(String(value));
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(nodeOf);
  if (typeof value === "object") {
    const keys = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return new JsonObject(keys.map((k) => [k, nodeOf((value as Record<string, unknown>)[k])]));
  }
  return null;
}
