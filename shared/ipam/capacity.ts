import { ipEqual } from "../net/ipaddr.js";
import type { IpamConfig } from "./config.js";
import { rangeSize } from "./range.js";
import { rangeFor, rangeSetString } from "./range-set.js";
import { ReservationStore } from "./store.js";

/** How full one range set is. */
export interface RangeSetUsage {
  index: number;
  /** The set as the reference prints it in its exhaustion error. */
  ranges: string;
  /** Addresses the iterator can hand out (gateways excluded). */
  capacity: bigint;
  /** Of those, how many hold a reservation (files holding no owner count as free, as ADD reclaims them). */
  used: bigint;
}

/**
 * Usage of every range set, read without the lock: STATUS is a snapshot answer and must not wait behind
 * (or delay) an ADD.
 */
export function rangeSetUsage(cfg: IpamConfig): RangeSetUsage[] {
  const reservations = ReservationStore.open(cfg.dataDir, cfg.name, false).scan();
  return cfg.ranges.map((set, index) => {
    let used = 0n;
    for (const r of reservations) {
      if (!r.ip || !r.owner) continue;
      const range = rangeFor(set, r.ip);
      if (range && !ipEqual(range.gateway, r.ip)) used += 1n;
    }
    const capacity = set.reduce((n, r) => n + rangeSize(r), 0n);
    return { index, ranges: rangeSetString(set), capacity, used };
  });
}

/** The first range set with no address left, if any: an ADD would fail on it. */
export function exhaustedRangeSet(cfg: IpamConfig): RangeSetUsage | undefined {
  return rangeSetUsage(cfg).find((u) => u.used >= u.capacity);
}
