/**
 * When each etcd lease ends, learned from our own grants and keep-alives and from TimeToLive answers, so
 * that listing N keys does not cost N RPCs (flanneld asks TimeToLive for every key on every list and
 * every event, anchors 10.1 item 14): keys share few leases, and a lease's end is asked once.
 *
 * A known end goes stale: a holder that keeps its lease alive (weftd does, with KeepAlive) moves the end
 * without any key event. So an answer is trusted until half the time between asking and the end has
 * passed, then asked again: a 24-h lease is re-read after 12 h, 18 h, ..., never per list.
 */
export interface Expiry {
  /** ms since the epoch. */
  expiresAt: number;
  /** When it was learned (the request's send time: the end is never later than computed). */
  learnedAt: number;
}

export class LeaseExpiries {
  private readonly known = new Map<string, Expiry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A grant, keep-alive or TimeToLive sent at `sentAt` answered `ttlSeconds` (> 0). */
  learn(id: string, ttlSeconds: number, sentAt: number): number {
    const expiresAt = sentAt + ttlSeconds * 1000;
    this.known.set(id, { expiresAt, learnedAt: sentAt });
    return expiresAt;
  }

  forget(id: string): void {
    this.known.delete(id);
  }

  /** The lease's end if known and still to be trusted, else undefined (ask etcd). */
  fresh(id: string): number | undefined {
    const e = this.known.get(id);
    if (!e) return undefined;
    return this.now() < staleAt(e) ? e.expiresAt : undefined;
  }

  /** When the earliest of these known ends goes stale (for a refresh timer), or undefined. */
  nextStale(ids: Iterable<string>): number | undefined {
    let next: number | undefined;
    for (const id of ids) {
      const e = this.known.get(id);
      if (e && (next === undefined || staleAt(e) < next)) next = staleAt(e);
    }
    return next;
  }

  /** Drops what no longer matters (leases no key uses), so the map does not grow with every renewal. */
  keepOnly(ids: Set<string>): void {
    for (const id of this.known.keys()) if (!ids.has(id)) this.known.delete(id);
  }
}

function staleAt(e: Expiry): number {
  return e.learnedAt + (e.expiresAt - e.learnedAt) / 2;
}
