import type { Fields, Logger } from "../shared/log.js";
import { type Clock, realClock } from "./clock.js";

/** A duration in a message: "400 ms". */
const DURATION = /\b\d+ ms\b/g;
const keyText = (msg: string) => msg.replace(DURATION, "# ms");

/**
 * A logger that drops a line identical (level and text) to one written less than `windowMs` ago, and
 * says how many it dropped when the line is next written: a store that is down for an hour is one line a
 * minute, not one per retry (flanneld's compaction loop wrote gigabytes of the same line). Durations a
 * line quotes ("in 400 ms", "failed after 3 ms") do not make it another line: each retry of one outage
 * quotes its own backoff or elapsed time, and would otherwise be written every time.
 */
export class RateLimitedLog {
  private readonly seen = new Map<string, { at: number; dropped: number }>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 60_000,
    private readonly clock: Clock = realClock,
  ) {}

  info(msg: string, fields?: Fields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.write("error", msg, fields);
  }

  /** Forgets a line, so its next occurrence is written at once (e.g. after the problem went away). */
  reset(msg?: string): void {
    if (msg === undefined) this.seen.clear();
    else for (const k of this.seen.keys()) if (k.endsWith(`\0${keyText(msg)}`)) this.seen.delete(k);
  }

  private write(level: "info" | "warn" | "error", msg: string, fields?: Fields): void {
    const key = `${level}\0${keyText(msg)}`;
    const now = this.clock.now();
    const s = this.seen.get(key);
    if (s && now - s.at < this.windowMs) {
      s.dropped++;
      return;
    }
    const extra = s && s.dropped > 0 ? { repeated: s.dropped } : {};
    this.seen.set(key, { at: now, dropped: 0 });
    this.log[level](msg, { ...fields, ...extra });
  }
}
