import { appendFileSync } from "node:fs";

/**
 * A line-oriented logger. stdout belongs to the CNI result, so diagnostics go to stderr (warnings and
 * worse by default) and, when WEFT_LOG_FILE or a config's `logFile` names one, to a file (everything at or
 * above WEFT_LOG_LEVEL, default info). Lines are `time level component msg key=value...`.
 */
export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface LoggerOptions {
  component: string;
  file?: string | undefined;
  fileLevel?: Level;
  stderrLevel?: Level;
  fields?: Fields;
  /** Where stderr lines go: the process's stderr unless a call names its own (weftd serving a client). */
  stderr?: (line: string) => void;
}

function quote(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /^[\w./:@,+-]*$/.test(s ?? "") && s !== "" ? String(s) : JSON.stringify(s);
}

export class Logger {
  constructor(private readonly opts: LoggerOptions) {}

  /** A logger with more context (container ID, verb) on every line. */
  with(fields: Fields): Logger {
    return new Logger({ ...this.opts, fields: { ...this.opts.fields, ...fields } });
  }

  /** Directs file output to `file` unless WEFT_LOG_FILE already chose one. */
  toFile(file: string | undefined): Logger {
    if (!file || this.opts.file) return this;
    return new Logger({ ...this.opts, file });
  }

  debug(msg: string, fields?: Fields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.write("error", msg, fields);
  }

  private write(level: Level, msg: string, fields?: Fields): void {
    const toStderr = RANK[level] >= RANK[this.opts.stderrLevel ?? "warn"];
    const toFile = this.opts.file !== undefined && RANK[level] >= RANK[this.opts.fileLevel ?? "info"];
    if (!toStderr && !toFile) return;
    const all = { ...this.opts.fields, ...fields };
    const kv = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(" ");
    const line = `${new Date().toISOString()} ${level} ${this.opts.component} ${quote(msg)}${kv ? ` ${kv}` : ""}\n`;
    if (toStderr) (this.opts.stderr ?? writeStderr)(line);
    if (toFile) {
      try {
        appendFileSync(this.opts.file!, line);
      } catch {
        // A broken log file must never fail a pod; stderr still has warnings.
      }
    }
  }
}

function writeStderr(line: string): void {
  process.stderr.write(line);
}

function levelFrom(v: string | undefined, fallback: Level): Level {
  return v && v in RANK ? (v as Level) : fallback;
}

export function createLogger(
  component: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  stderr?: (line: string) => void,
): Logger {
  return new Logger({
    stderr,
    component,
    file: env.WEFT_LOG_FILE || undefined,
    fileLevel: levelFrom(env.WEFT_LOG_LEVEL, "info"),
    stderrLevel: levelFrom(env.WEFT_LOG_STDERR_LEVEL, "warn"),
  });
}
