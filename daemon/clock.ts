/**
 * Time as the daemon's loops see it, so tests can run a lease's day in microseconds: `now`, one-shot
 * timers, and an interruptible sleep.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer | undefined): void;
}

export type Timer = { readonly id: unknown };

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    // Node caps timers at 2^31-1 ms (about 24.8 days); a longer wait simply wakes up early.
    const t = setTimeout(fn, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    return { id: t };
  },
  clearTimeout: (t) => {
    if (t) clearTimeout(t.id as NodeJS.Timeout);
  },
};

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clock.clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = clock.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
