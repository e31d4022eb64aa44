/**
 * Go's %q (strconv.Quote), for error texts that must read exactly as the reference prints them: JSON
 * escaping differs for control characters (\x01, \a, \v) and for non-printing Unicode.
 */

const SHORT: Record<string, string> = {
  "\u0007": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  '"': '\\"',
  "\\": "\\\\",
};

// unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. Made on first use
// of a character outside printable ASCII: the Unicode classes cost ~1 ms to build, and every plugin
// process loads this module for its error texts.
let printable: RegExp | undefined;
function isPrintable(ch: string, cp: number): boolean {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7f;
  printable ??= /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
  return printable.test(ch);
}

export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const short = SHORT[ch];
    const cp = ch.codePointAt(0)!;
    if (short) out += short;
    else if (isPrintable(ch, cp)) out += ch;
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

/** %q of a []string: ["a" "b"]. */
export function goQuoteList(items: readonly string[]): string {
  return `[${items.map(goQuote).join(" ")}]`;
}
