import { type IP, ipEqual, nextIp } from "../net/ipaddr.js";
import type { Range } from "./range.js";
import { type RangeSet, rangeFor } from "./range-set.js";

/** One candidate address with the range it came from. */
export interface Candidate {
  ip: IP;
  range: Range;
}

/**
 * The reference's round-robin RangeIter. It starts after the last reserved address when that address is
 * still in the set (else at the first range's rangeStart), walks each range up to its rangeEnd, moves to
 * the next range's rangeStart (wrapping to the first), skips each range's gateway and stops when it comes
 * back to where it started. The last reserved address itself is therefore offered last, and a crash-looping
 * container does not get the same address again until the whole set has been used.
 */
export function* roundRobin(set: RangeSet, lastReserved: IP | undefined): Generator<Candidate> {
  let idx = 0;
  let cur: IP | undefined;
  let start: IP | undefined;
  const last = lastReserved ? rangeFor(set, lastReserved) : undefined;
  if (lastReserved && last) {
    idx = set.indexOf(last);
    cur = lastReserved;
  } else {
    start = set[0]!.rangeStart;
  }
  for (;;) {
    let r = set[idx]!;
    if (cur === undefined) {
      // First step without a last reserved address: rangeStart itself is a candidate.
      cur = r.rangeStart;
      start = cur;
    } else {
      if (ipEqual(cur, r.rangeEnd)) {
        idx = (idx + 1) % set.length;
        r = set[idx]!;
        cur = r.rangeStart;
      } else {
        cur = nextIp(cur);
      }
      if (start === undefined) start = cur;
      else if (ipEqual(cur, start)) return;
    }
    if (ipEqual(cur, r.gateway)) continue;
    yield { ip: cur, range: r };
  }
}
