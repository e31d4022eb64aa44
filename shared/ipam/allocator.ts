import { validateContainerId, validateIfname } from "../cni/env.js";
import { CniError, ErrorCode, wrapError } from "../cni/errors.js";
import type { IPConfig } from "../cni/types.js";
import type { Logger } from "../log.js";
import { formatIp, type IP, ipEqual } from "../net/ipaddr.js";
import type { IpamConfig } from "./config.js";
import { withFileLock } from "./flock.js";
import { roundRobin } from "./iterator.js";
import type { Range } from "./range.js";
import { type RangeSet, rangeSetContains, rangeSetString, requireRangeFor } from "./range-set.js";
import { ownerKeys, type Reservation, ReservationStore } from "./store.js";

/** One address handed out by `allocate`: set index, address and the range (mask, gateway) it came from. */
export interface Allocation {
  setIndex: number;
  ip: IP;
  range: Range;
}

/** The result's ips[] entry: `<ip>/<subnet length>` and the range's gateway. */
export function toIpConfig(a: Allocation): IPConfig {
  return { address: `${formatIp(a.ip)}/${a.range.prefix}`, gateway: formatIp(a.range.gateway) };
}

export interface AllocatorOptions {
  log?: Logger | undefined;
}

/**
 * ADD: one address from every range set for (containerId, ifname), as the reference's cmdAdd + allocator.Get.
 *
 * The reference takes the flock once per range set; weft takes it once for the whole ADD. The outcome
 * for the same history is the same (O_EXCL/link creation is still the arbiter), the rollback of a failed
 * ADD happens under the same lock, and a dual-stack ADD starts one flock(1) child instead of two.
 */
export async function allocate(
  cfg: IpamConfig,
  containerId: string,
  ifname: string,
  opts: AllocatorOptions = {},
): Promise<Allocation[]> {
  validateContainerId(containerId);
  validateIfname(ifname);
  const store = ReservationStore.open(cfg.dataDir, cfg.name);
  return withFileLock(store.lockPath, () => allocateLocked(store, cfg, containerId, ifname, opts.log));
}

function allocateLocked(
  store: ReservationStore,
  cfg: IpamConfig,
  containerId: string,
  ifname: string,
  log: Logger | undefined,
): Allocation[] {
  // Keyed by text like the reference's map, so a repeated request counts once.
  const requested = new Map<string, IP>();
  for (const ip of cfg.requestedIps) if (!requested.has(formatIp(ip))) requested.set(formatIp(ip), ip);

  const existing = store.scan({ locked: true });
  const taken = new Set(existing.filter((r) => r.owner !== undefined).map((r) => r.name));
  const keys = ownerKeys(containerId, ifname);
  const mine = existing.filter((r) => r.ip && (r.content === keys.exact || r.content === keys.legacy));
  const onReclaim = (path: string) =>
    log?.warn("reclaiming a reservation file that holds no owner", { path });

  const done: Allocation[] = [];
  // Only what this call created is undone. (The reference's rollback releases every file of the
  // container and interface, including an address it held before this ADD.)
  const rollback = () => {
    for (const a of done) store.remove(formatIp(a.ip));
  };

  cfg.ranges.forEach((set, idx) => {
    let want: IP | undefined;
    for (const [text, ip] of requested) {
      if (rangeSetContains(set, ip)) {
        want = ip;
        requested.delete(text);
        break;
      }
    }
    try {
      const ctx: SetContext = { store, set, idx, containerId, ifname, taken, onReclaim };
      const got = want ? takeRequested(ctx, want) : takeNext(ctx, mine);
      done.push(got);
      taken.add(formatIp(got.ip));
    } catch (err) {
      rollback();
      throw wrapError(`failed to allocate for range ${idx}`, err);
    }
  });

  if (requested.size > 0) {
    rollback();
    throw new CniError(
      ErrorCode.Internal,
      `failed to allocate all requested IPs: ${[...requested.keys()].join(" ")}`,
    );
  }
  return done;
}

interface SetContext {
  store: ReservationStore;
  set: RangeSet;
  idx: number;
  containerId: string;
  ifname: string;
  taken: Set<string>;
  onReclaim: (path: string) => void;
}

function takeRequested(ctx: SetContext, ip: IP): Allocation {
  const range = requireRangeFor(ctx.set, ip);
  if (ipEqual(ip, range.gateway)) throw new Error(`requested ip ${formatIp(ip)} is subnet's gateway`);
  if (!ctx.store.reserve(ctx.containerId, ctx.ifname, ip, ctx.idx, ctx.onReclaim)) {
    throw new Error(
      `requested IP address ${formatIp(ip)} is not available in range set ${rangeSetString(ctx.set)}`,
    );
  }
  return { setIndex: ctx.idx, ip, range };
}

function takeNext(ctx: SetContext, mine: Reservation[]): Allocation {
  // The spec forbids a second address for the same attachment: fail like the reference.
  for (const r of mine) {
    if (r.ip && rangeSetContains(ctx.set, r.ip)) {
      throw new Error(
        `${formatIp(r.ip)} has been allocated to ${ctx.containerId}, duplicate allocation is not allowed`,
      );
    }
  }
  for (const c of roundRobin(ctx.set, ctx.store.lastReservedIp(ctx.idx))) {
    // A held address would fail its exclusive create anyway; skipping it saves the system calls.
    if (ctx.taken.has(formatIp(c.ip))) continue;
    if (ctx.store.reserve(ctx.containerId, ctx.ifname, c.ip, ctx.idx, ctx.onReclaim)) {
      return { setIndex: ctx.idx, ip: c.ip, range: c.range };
    }
  }
  throw new Error(`no IP addresses available in range set: ${rangeSetString(ctx.set)}`);
}

/**
 * DEL: removes the container's reservations whatever range they are in (a changed subnet still frees old
 * files). Like the reference, which runs Release once per range set: each pass removes the files holding
 * `<id>\r\n<ifname>` and, when it finds none, the legacy files holding `<id>` alone. Nothing held is fine.
 */
export async function release(cfg: IpamConfig, containerId: string, ifname: string): Promise<string[]> {
  validateContainerId(containerId);
  const store = ReservationStore.open(cfg.dataDir, cfg.name);
  return withFileLock(store.lockPath, () => {
    const keys = ownerKeys(containerId, ifname);
    let remaining = store.scan({ locked: true });
    const released: string[] = [];
    const removeWhere = (content: string): boolean => {
      let found = false;
      for (const r of remaining) {
        if (r.content === content && store.remove(r.name)) {
          released.push(r.name);
          found = true;
        }
      }
      remaining = remaining.filter((r) => !released.includes(r.name));
      return found;
    };
    for (let i = 0; i < cfg.ranges.length; i++) {
      if (!removeWhere(keys.exact)) removeWhere(keys.legacy);
    }
    return released;
  });
}

/** CHECK: whether any reservation (or a legacy one) names this container and interface. */
export async function hasReservation(cfg: IpamConfig, containerId: string, ifname: string): Promise<boolean> {
  validateContainerId(containerId);
  const store = ReservationStore.open(cfg.dataDir, cfg.name);
  return withFileLock(store.lockPath, () => {
    const keys = ownerKeys(containerId, ifname);
    const all = store.scan();
    return all.some((r) => r.content === keys.exact) || all.some((r) => r.content === keys.legacy);
  });
}
