import { test } from "uvu";
import * as assert from "uvu/assert";
import { batchWordProblem, IpWordError, parseBatchErrors, q, reasonOf } from "../../shared/net/ip.js";

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

/**
 * iproute2's batch reader (lib/utils.c getcmdline + makeargs, v5.10 to v7.1), ported line for line: the
 * oracle the quoting is checked against. `input` is the whole batch; returns each command's words.
 */
function ipBatchWords(input: string): string[][] {
  const lines = input.split(/(?<=\n)/);
  const out: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const cut = (l: string) => (l.includes("#") ? l.slice(0, l.indexOf("#")) : l);
    line = cut(line);
    while (line.includes("\\\n")) {
      const next = lines[++i];
      if (next === undefined) throw new Error("Missing continuation line");
      line = line.replace("\\\n", "") + cut(next);
    }
    const words: string[] = [];
    let cp = 0;
    const ws = " \t\r\n";
    while (cp < line.length) {
      while (cp < line.length && ws.includes(line[cp]!)) cp++;
      if (cp >= line.length) break;
      const quote = line[cp];
      if (quote === "'" || quote === '"') {
        const end = line.indexOf(quote, cp + 1);
        if (end < 0) throw new Error("Unterminated quoted string");
        words.push(line.slice(cp + 1, end));
        cp = end + 1;
      } else {
        let end = cp;
        while (end < line.length && !ws.includes(line[end]!)) end++;
        words.push(line.slice(cp, end));
        cp = end + 1;
      }
    }
    if (words.length > 0) out.push(words);
  }
  return out;
}

test("the oracle reads ip's batch syntax as iproute2 does", () => {
  assert.equal(ipBatchWords('link set dev "a b" up\n'), [["link", "set", "dev", "a b", "up"]]);
  assert.equal(ipBatchWords('link show dev a"b\n'), [["link", "show", "dev", 'a"b']]);
  // No escapes: the backslash is literal and the second quote ends the word.
  assert.equal(ipBatchWords('link show dev "a\\"b"\n'), [["link", "show", "dev", "a\\", 'b"']]);
  // "#" starts a comment even inside quotes, which leaves the quote open.
  assert.throws(() => ipBatchWords('link show dev "x#y"\n'), /Unterminated quoted string/);
  assert.equal(ipBatchWords("link show dev e\\\nup\n"), [["link", "show", "dev", "eup"]]);
});

test("a word ip can carry comes back as the same single word", () => {
  const words = [
    "veth1234abcd",
    "br-0.1",
    "e\\th",
    "e\\",
    "\\",
    'a"b',
    "a'b",
    '"ab',
    "'ab",
    '"',
    "'",
    "a b",
    "",
    "x\ty",
    "ü",
    "/var/run/netns/pod 1",
    "/proc/1/ns/net",
    "up",
  ];
  for (const w of words) {
    assert.is(batchWordProblem(w), undefined, w);
    const line = `link set dev ${q(w)}\n`;
    assert.equal(ipBatchWords(line), [["link", "set", "dev", w]], `${JSON.stringify(w)} as ${q(w)}`);
    // Last on its line and followed by more words alike.
    assert.equal(ipBatchWords(`link set dev ${q(w)} up\n`), [["link", "set", "dev", w, "up"]], w);
  }
});

test("random words: carried exactly, or refused with a reason", () => {
  const alphabet = ["a", "0", "-", '"', "'", "\\", "#", " ", "\t", "\r", "\n", "\0", ".", "é"];
  let seed = 0x5eed;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    let w = "";
    for (let j = rnd(6); j > 0; j--) w += alphabet[rnd(alphabet.length)];
    const problem = batchWordProblem(w);
    if (problem) {
      assert.throws(
        () => q(w),
        (e: unknown) => e instanceof IpWordError && e.reason === problem,
      );
      continue;
    }
    assert.equal(
      ipBatchWords(`addr show dev ${q(w)} x\n`),
      [["addr", "show", "dev", w, "x"]],
      JSON.stringify(w),
    );
  }
});

test("what ip's batch reader cannot carry is refused with the reason", () => {
  assert.match(batchWordProblem("a#b") ?? "", /"#" as the start of a comment/);
  assert.match(batchWordProblem("#") ?? "", /comment/);
  assert.match(batchWordProblem("a\nb") ?? "", /line break/);
  assert.match(batchWordProblem("a\0b") ?? "", /NUL/);
  // Needs quotes (starts with a quote, has a space, or ends in a backslash) and holds both quotes.
  assert.match(batchWordProblem(`"a'`) ?? "", /both ' and "/);
  assert.match(batchWordProblem(`a "'`) ?? "", /both ' and "/);
  assert.match(batchWordProblem(`a"'\\`) ?? "", /both ' and "/);
  // Both quotes inside a bare word are fine: quotes only open a word at its start.
  assert.is(batchWordProblem(`a"b'c`), undefined);
  assert.throws(() => q("a#b"), /"a#b" cannot be passed to ip: ip's batch input takes "#"/);
});

test("names are quoted only when needed, in the quote they do not hold", () => {
  assert.is(q("veth1234abcd"), "veth1234abcd");
  assert.is(q("br-0.1"), "br-0.1");
  assert.is(q("e\\th"), "e\\th");
  assert.is(q('a"b'), 'a"b');
  assert.is(q("a b"), '"a b"');
  assert.is(q('"ab'), `'"ab'`);
  assert.is(q("e\\"), '"e\\"');
  assert.is(q(""), '""');
});

test("a batch ip ended without a command number fails with ip's own words", () => {
  // ip exits at once on an argument it cannot parse; lines after the last numbered failure are that.
  assert.equal(
    parseBatchErrors(
      'RTNETLINK answers: File exists\nCommand failed -:1\nError: argument "x" is wrong: Device does not exist\n',
    ),
    [
      { lineNo: 1, message: "RTNETLINK answers: File exists" },
      { lineNo: 0, message: 'Error: argument "x" is wrong: Device does not exist' },
    ],
  );
});

test.run();
