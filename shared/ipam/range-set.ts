import { formatIp, type IP } from "../net/ipaddr.js";
import {
  canonicalizeRange,
  type Range,
  type RangeInput,
  rangeContains,
  rangeString,
  rangesOverlap,
} from "./range.js";

/** A range set: the ranges one address is drawn from (one address per set per ADD). */
export type RangeSet = Range[];

/** RangeSet.Canonicalize: at least one range, each canonical, one family, no overlaps inside the set. */
export function canonicalizeRangeSet(inputs: RangeInput[]): RangeSet {
  if (inputs.length === 0) throw new Error("empty range set");
  const set: RangeSet = [];
  for (const input of inputs) {
    const r = canonicalizeRange(input);
    if (set.length > 0 && set[0]!.rangeStart.family !== r.rangeStart.family) {
      throw new Error("mixed address families");
    }
    set.push(r);
  }
  for (let i = 0; i < set.length - 1; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i]!, set[j]!)) {
        throw new Error(`subnets ${rangeString(set[i]!)} and ${rangeString(set[j]!)} overlap`);
      }
    }
  }
  return set;
}

/** The reference's RangeSet.String(): the ranges' `start-end`, comma-separated. */
export function rangeSetString(set: RangeSet): string {
  return set.map(rangeString).join(",");
}

/** The range holding `ip`, or undefined. */
export function rangeFor(set: RangeSet, ip: IP): Range | undefined {
  return set.find((r) => rangeContains(r, ip));
}

export function rangeSetContains(set: RangeSet, ip: IP): boolean {
  return rangeFor(set, ip) !== undefined;
}

/** RangeFor with the reference's error. */
export function requireRangeFor(set: RangeSet, ip: IP): Range {
  const r = rangeFor(set, ip);
  if (!r) throw new Error(`${formatIp(ip)} not in range set ${rangeSetString(set)}`);
  return r;
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r) => b.some((r1) => rangesOverlap(r, r1)));
}
