/**
 * Go's encoding/json syntax check (scanner.go's checkValid), for the text of its error: the reference
 * plugins answer a malformed config with `invalid character 'x' after object key` or `unexpected end of
 * JSON input`, which is what users search for; JSON.parse's own words ("Unterminated string in JSON at
 * position 99") are V8's and say nothing to someone who knows CNI. Used only after JSON.parse failed, so
 * the hot path pays nothing.
 */

type Step = (c: number) => boolean;

/** scanner.go's maxNestingDepth. */
const MAX_NESTING_DEPTH = 10000;
type Frame = "objectKey" | "objectValue" | "arrayValue";

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

/** Go's strconv.IsPrint for U+0000..U+00FF (a byte as Go's quoteChar sees it: string(byte) is a rune). */
function isPrintLatin1(c: number): boolean {
  return (c >= 0x20 && c < 0x7f) || (c >= 0xa1 && c !== 0xad);
}

/** json's quoteChar: the byte as a Go rune in single quotes, escaped as strconv.Quote escapes it. */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  const named: Record<number, string> = {
    7: "\\a",
    8: "\\b",
    9: "\\t",
    10: "\\n",
    11: "\\v",
    12: "\\f",
    13: "\\r",
  };
  if (c === 0x5c) return "'\\\\'";
  if (named[c]) return `'${named[c]}'`;
  if (isPrintLatin1(c)) return `'${String.fromCharCode(c)}'`;
  if (c < 0x80) return `'\\x${c.toString(16).padStart(2, "0")}'`;
  return `'\\u${c.toString(16).padStart(4, "0")}'`;
}

/** A port of scanner.go's state machine, reduced to what the error text needs. */
class Scanner {
  step: Step = (c) => this.beginValue(c);
  private readonly stack: Frame[] = [];
  private endTop = false;
  err: string | undefined;

  private error(c: number, context: string): boolean {
    this.step = () => false;
    this.err = `invalid character ${quoteChar(c)} ${context}`;
    return false;
  }

  private to(next: Step): boolean {
    this.step = next;
    return true;
  }

  private beginValueOrEmpty(c: number): boolean {
    if (isSpace(c)) return true;
    if (c === 0x5d) return this.endValue(c);
    return this.beginValue(c);
  }

  private beginValue(c: number): boolean {
    if (isSpace(c)) return true;
    switch (c) {
      case 0x7b: // {
        return this.push(c, "objectKey", (x) => this.beginStringOrEmpty(x));
      case 0x5b: // [
        return this.push(c, "arrayValue", (x) => this.beginValueOrEmpty(x));
      case 0x22:
        return this.to((x) => this.inString(x));
      case 0x2d: // -
        return this.to((x) => this.neg(x));
      case 0x30:
        return this.to((x) => this.zero(x));
      case 0x74:
        return this.to(this.literal("true", 1));
      case 0x66:
        return this.to(this.literal("false", 1));
      case 0x6e:
        return this.to(this.literal("null", 1));
    }
    if (c >= 0x31 && c <= 0x39) return this.to((x) => this.one(x));
    return this.error(c, "looking for beginning of value");
  }

  private beginStringOrEmpty(c: number): boolean {
    if (isSpace(c)) return true;
    if (c === 0x7d) {
      this.stack[this.stack.length - 1] = "objectValue";
      return this.endValue(c);
    }
    return this.beginString(c);
  }

  private beginString(c: number): boolean {
    if (isSpace(c)) return true;
    if (c === 0x22) return this.to((x) => this.inString(x));
    return this.error(c, "looking for beginning of object key string");
  }

  private endValue(c: number): boolean {
    const n = this.stack.length;
    if (n === 0) {
      this.endTop = true;
      this.step = (x) => this.endTopStep(x);
      return this.endTopStep(c);
    }
    if (isSpace(c)) return this.to((x) => this.endValue(x));
    switch (this.stack[n - 1]) {
      case "objectKey":
        if (c === 0x3a) {
          this.stack[n - 1] = "objectValue";
          return this.to((x) => this.beginValue(x));
        }
        return this.error(c, "after object key");
      case "objectValue":
        if (c === 0x2c) {
          this.stack[n - 1] = "objectKey";
          return this.to((x) => this.beginString(x));
        }
        if (c === 0x7d) return this.pop();
        return this.error(c, "after object key:value pair");
      default:
        if (c === 0x2c) return this.to((x) => this.beginValue(x));
        if (c === 0x5d) return this.pop();
        return this.error(c, "after array element");
    }
  }

  private push(c: number, frame: Frame, next: Step): boolean {
    this.stack.push(frame);
    if (this.stack.length > MAX_NESTING_DEPTH) return this.error(c, "exceeded max depth");
    return this.to(next);
  }

  private pop(): boolean {
    this.stack.pop();
    if (this.stack.length === 0) {
      this.endTop = true;
      return this.to((x) => this.endTopStep(x));
    }
    return this.to((x) => this.endValue(x));
  }

  private endTopStep(c: number): boolean {
    if (!isSpace(c)) return this.error(c, "after top-level value");
    return true;
  }

  private inString(c: number): boolean {
    if (c === 0x22) return this.to((x) => this.endValue(x));
    if (c === 0x5c) return this.to((x) => this.inStringEsc(x));
    if (c < 0x20) return this.error(c, "in string literal");
    return true;
  }

  private inStringEsc(c: number): boolean {
    if ([0x62, 0x66, 0x6e, 0x72, 0x74, 0x5c, 0x2f, 0x22].includes(c)) return this.to((x) => this.inString(x));
    if (c === 0x75) return this.to(this.hexEscape(4));
    return this.error(c, "in string escape code");
  }

  private hexEscape(left: number): Step {
    return (c) => {
      if (!isHex(c)) return this.error(c, "in \\u hexadecimal character escape");
      return this.to(left > 1 ? this.hexEscape(left - 1) : (x) => this.inString(x));
    };
  }

  private neg(c: number): boolean {
    if (c === 0x30) return this.to((x) => this.zero(x));
    if (c >= 0x31 && c <= 0x39) return this.to((x) => this.one(x));
    return this.error(c, "in numeric literal");
  }

  private one(c: number): boolean {
    if (isDigit(c)) return true;
    return this.zero(c);
  }

  private zero(c: number): boolean {
    if (c === 0x2e) return this.to((x) => this.dot(x));
    if (c === 0x65 || c === 0x45) return this.to((x) => this.exp(x));
    return this.endValue(c);
  }

  private dot(c: number): boolean {
    if (isDigit(c)) return this.to((x) => this.dot0(x));
    return this.error(c, "after decimal point in numeric literal");
  }

  private dot0(c: number): boolean {
    if (isDigit(c)) return true;
    if (c === 0x65 || c === 0x45) return this.to((x) => this.exp(x));
    return this.endValue(c);
  }

  private exp(c: number): boolean {
    if (c === 0x2b || c === 0x2d) return this.to((x) => this.expSign(x));
    return this.expSign(c);
  }

  private expSign(c: number): boolean {
    if (isDigit(c)) return this.to((x) => this.exp0(x));
    return this.error(c, "in exponent of numeric literal");
  }

  private exp0(c: number): boolean {
    if (isDigit(c)) return true;
    return this.endValue(c);
  }

  /** true/false/null after their first letter: each next byte must be the literal's next letter. */
  private literal(word: string, at: number): Step {
    return (c) => {
      if (c !== word.charCodeAt(at)) return this.error(c, `in literal ${word} (expecting '${word[at]}')`);
      return this.to(at + 1 < word.length ? this.literal(word, at + 1) : (x) => this.endValue(x));
    };
  }

  /** scanner.eof: a value cut short is judged as if a space followed it, else the input simply ended. */
  eof(): string | undefined {
    if (this.err) return this.err;
    if (this.endTop) return undefined;
    this.step(0x20);
    if (this.endTop) return undefined;
    return this.err ?? "unexpected end of JSON input";
  }
}

/** Go's json.Unmarshal syntax error text for `data`, or undefined when Go would find the syntax valid. */
export function goJsonSyntaxError(data: Uint8Array): string | undefined {
  const s = new Scanner();
  for (const c of data) if (!s.step(c)) return s.err;
  return s.eof();
}
