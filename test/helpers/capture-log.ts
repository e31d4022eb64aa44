import type { Fields, Logger } from "../../shared/log.js";

/** A Logger that keeps its lines ("level message") for assertions instead of writing them anywhere. */
export interface CapturedLog {
  log: Logger;
  lines: string[];
  /** Whether some line matches. */
  has(re: RegExp): boolean;
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const write = (level: string) => (msg: string, fields?: Fields) => {
    const kv = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
    lines.push(`${level} ${msg}${kv}`);
  };
  const log = {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    with: () => log,
    toFile: () => log,
  } as unknown as Logger;
  return { log, lines, has: (re) => lines.some((l) => re.test(l)) };
}
