import { constants as osConstants } from "node:os";

/**
 * One exchange with a server on a Unix stream socket: connect, send one payload and half-close, read
 * until the server closes. The thin client's only network I/O (thin-client.ts).
 *
 * Two transports with the same events: libuv's pipe handle driven the way Node's own net module drives
 * it (`process.binding("pipe_wrap")`), and node:net itself. Why the handle: the thin client runs once per
 * CNI call, and loading net (and the streams it is built on) and setting up a Socket is most of what a
 * served call costs above Node's own start. Measured on the development VM, SEAs of ~10 lines (perf stat
 * -r 20, wall): empty 32.4 ms, connect + one round trip through the handle 38.5 ms, through net 45.3 ms.
 * The handle API is Node's internal one; the executable embeds one Node version (scripts/build.mjs), a
 * unit test runs the same exchanges through both transports, and a binding whose shape is not the one
 * expected here makes the exchange go through net.
 */

export interface ExchangeEvents {
  /** Connected; the payload is on its way (nothing can be taken back from here on). */
  connected(): void;
  data(chunk: Buffer): void;
  /**
   * The exchange is over: `error` is undefined when the server closed after its reply, else the system
   * error code (ENOENT, ECONNREFUSED, EACCES, ECONNRESET, ...). Called once, never after close().
   */
  ended(error?: string): void;
}

export interface Exchange {
  /** Drops the connection; no event follows. */
  close(): void;
}

export type Transport = "handle" | "net";

/** The transport `exchange` uses by default in this Node: the handle when its bindings are as expected. */
export function defaultTransport(): Transport {
  return handleBindings() ? "handle" : "net";
}

/** Starts the exchange; events come asynchronously (never from inside this call). */
export function exchange(
  path: string,
  payload: string,
  on: ExchangeEvents,
  transport: Transport = defaultTransport(),
): Exchange {
  const b = transport === "handle" ? handleBindings() : undefined;
  return b ? viaHandle(b, path, payload, once(on)) : viaNet(path, payload, once(on));
}

/** `ended` at most once, and nothing after it. */
function once(on: ExchangeEvents): ExchangeEvents & { over: boolean } {
  const o = {
    over: false,
    connected: () => {
      if (!o.over) on.connected();
    },
    data: (chunk: Buffer) => {
      if (!o.over) on.data(chunk);
    },
    ended: (error?: string) => {
      if (o.over) return;
      o.over = true;
      on.ended(error);
    },
  };
  return o;
}

// ---- the pipe handle (lib/net.js and lib/internal/stream_base_commons.js of Node 22 drive it so)

interface Req {
  oncomplete: (status: number) => void;
  handle?: unknown;
}
interface PipeHandle {
  connect(req: Req, path: string): number;
  writeUtf8String(req: Req, s: string): number;
  shutdown(req: Req): number;
  readStart(): number;
  close(cb?: () => void): void;
  onread: (buf?: ArrayBuffer) => void;
}
interface HandleBindings {
  Pipe: new (type: number) => PipeHandle;
  PipeConnectWrap: new () => Req;
  WriteWrap: new () => Req;
  ShutdownWrap: new () => Req;
  SOCKET: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  EOF: number;
}

let bindings: HandleBindings | null | undefined;

/** The bindings, or null when this Node does not have them in the shape used here. */
function handleBindings(): HandleBindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  try {
    const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
    if (typeof binding !== "function") return null;
    const pipe = binding("pipe_wrap");
    const stream = binding("stream_wrap");
    const uv = binding("uv");
    const fns = [pipe.Pipe, pipe.PipeConnectWrap, stream.WriteWrap, stream.ShutdownWrap];
    const proto = (pipe.Pipe as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const methods = ["connect", "writeUtf8String", "shutdown", "readStart", "close"];
    const socket = (pipe.constants as Record<string, unknown> | undefined)?.SOCKET;
    if (
      fns.some((f) => typeof f !== "function") ||
      !proto ||
      methods.some((m) => typeof proto[m] !== "function") ||
      typeof socket !== "number" ||
      !(stream.streamBaseState instanceof Int32Array) ||
      typeof stream.kReadBytesOrError !== "number" ||
      typeof stream.kArrayBufferOffset !== "number"
    ) {
      return null;
    }
    bindings = {
      Pipe: pipe.Pipe as HandleBindings["Pipe"],
      PipeConnectWrap: pipe.PipeConnectWrap as HandleBindings["PipeConnectWrap"],
      WriteWrap: stream.WriteWrap as HandleBindings["WriteWrap"],
      ShutdownWrap: stream.ShutdownWrap as HandleBindings["ShutdownWrap"],
      SOCKET: socket,
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kArrayBufferOffset: stream.kArrayBufferOffset,
      EOF: typeof uv.UV_EOF === "number" ? uv.UV_EOF : -4095,
    };
  } catch {
    bindings = null;
  }
  return bindings;
}

/** libuv's negative status as the system error code Node would report. */
function errorName(status: number): string {
  for (const [name, n] of Object.entries(osConstants.errno)) if (n === -status) return name;
  return `error ${status}`;
}

function viaHandle(b: HandleBindings, path: string, payload: string, on: ReturnType<typeof once>): Exchange {
  const handle = new b.Pipe(b.SOCKET);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    handle.close();
  };
  const end = (error?: string) => {
    close();
    on.ended(error);
  };
  const fail = (status: number) => end(errorName(status));
  const connect = new b.PipeConnectWrap();
  connect.oncomplete = (status) => {
    if (on.over) return;
    if (status < 0) return fail(status);
    on.connected();
    handle.onread = (buf) => {
      const n = b.state[b.kReadBytesOrError]!;
      if (n === b.EOF) return end();
      if (n < 0) return fail(n);
      if (n > 0 && buf) on.data(Buffer.from(Buffer.from(buf, b.state[b.kArrayBufferOffset], n)));
    };
    const write = new b.WriteWrap();
    write.handle = handle;
    // Called only when the write did not complete at once.
    write.oncomplete = (s) => {
      if (s < 0) fail(s);
    };
    // libuv runs the shutdown after the writes queued before it: the server sees the whole line, then EOF.
    const shutdown = new b.ShutdownWrap();
    shutdown.handle = handle;
    shutdown.oncomplete = (s) => {
      if (s < 0) fail(s);
    };
    for (const step of [
      () => handle.writeUtf8String(write, payload),
      () => handle.shutdown(shutdown),
      () => handle.readStart(),
    ]) {
      const err = step();
      if (err < 0) return fail(err);
    }
  };
  const err = handle.connect(connect, path);
  if (err < 0) process.nextTick(() => fail(err));
  return {
    close: () => {
      on.over = true;
      close();
    },
  };
}

// ---- node:net, loaded only when used

function viaNet(path: string, payload: string, on: ReturnType<typeof once>): Exchange {
  const net = process.getBuiltinModule("node:net") as typeof import("node:net");
  const sock = net.connect(path);
  sock.on("connect", () => {
    on.connected();
    sock.end(payload);
  });
  sock.on("data", (d: Buffer) => on.data(d));
  let error: string | undefined;
  sock.on("error", (err: NodeJS.ErrnoException) => {
    error = err.code ?? err.message;
  });
  sock.on("close", () => on.ended(error));
  return {
    close: () => {
      on.over = true;
      sock.destroy();
    },
  };
}
