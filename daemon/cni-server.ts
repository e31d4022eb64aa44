/**
 * weftd serving the plugins' calls (the resident fast path). A plugin executable that finds this socket
 * sends what it was run with (cli/thin-client.ts); weftd runs the same Plugin implementation in its warm
 * process (code loaded once, validators compiled once, delegates flannel -> bridge -> host-local
 * in-process) and replies with exactly what the plugin would have printed and its exit status.
 *
 * Calls run concurrently, each with its own Caller (environment, executable, stderr): nothing of a call
 * goes through weftd's own process.env or stderr. The socket is root's only (0600 in a 0700 directory),
 * as the plugins run as root and a call can change any pod's network.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { PLUGINS } from "../cli/plugins.js";
import type { Caller } from "../shared/cni/env.js";
import { CniError, ErrorCode } from "../shared/cni/errors.js";
import { registerBuiltinPlugins } from "../shared/cni/invoke.js";
import { runCall } from "../shared/cni/skel.js";
import {
  type CallReply,
  type CallRequest,
  type FileIdentity,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  SERVED_PLUGINS,
} from "../shared/cni/socket-protocol.js";
import { STDIN_LIMIT } from "../shared/cni/stdin.js";
import type { Logger } from "../shared/log.js";

/** What a served call reports when it ends (metrics, logs). */
export interface CallRecord {
  plugin: string;
  verb: string;
  /** The CNI error code, or 0 on success. */
  code: number;
  seconds: number;
  /** The host-local network directory the call's config points at, if any (/metrics counts its addresses). */
  ipamDir?: string;
}

export interface CniServerOptions {
  path: string;
  log: Logger;
  /** Called after every served call (the daemon's metrics). */
  onCall?: (r: CallRecord) => void;
}

/** CAP_SYS_ADMIN's bit in CapEff of /proc/<pid>/status (linux/capability.h). */
const CAP_SYS_ADMIN = 21n;

/**
 * Why this process cannot run the plugins' calls as the plugins themselves run them, or undefined. The
 * plugins enter pod network namespaces (setns(2), which takes CAP_SYS_ADMIN) and write sysctls of the
 * pods and the bridge under /proc/sys (read-only in a container that is not privileged). A weftd that
 * served calls without these would fail every pod it serves; not serving leaves the calls to the
 * plugins, which the runtime runs as root on the host.
 */
export function cannotServe(
  status: string = readFileSync("/proc/self/status", "utf8"),
  sysctl = "/proc/sys/net/ipv4/ip_forward",
): string | undefined {
  const eff = /^CapEff:\s*([0-9a-f]+)\s*$/m.exec(status)?.[1];
  if (eff === undefined || ((BigInt(`0x${eff}`) >> CAP_SYS_ADMIN) & 1n) === 0n)
    return "weftd lacks CAP_SYS_ADMIN, which entering a pod's network namespace takes (setns)";
  try {
    // Opened for writing, nothing written: EROFS on a read-only /proc/sys, EACCES without the right.
    closeSync(openSync(sysctl, "r+"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return `${sysctl} is not writable (${code}), and the plugins write the pods' and the bridge's sysctls`;
  }
  return undefined;
}

/** A request the daemon refuses as malformed: answered with a CNI error, the connection then closed. */
class BadRequest extends Error {}

function same(a: FileIdentity | null | undefined, b: FileIdentity | null): boolean {
  return !!a && !!b && a.dev === b.dev && a.ino === b.ino;
}

function identity(path: string): FileIdentity | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Checks the shape of a parsed request; throws BadRequest naming the first wrong field. */
function checkRequest(r: unknown): CallRequest {
  const bad = (what: string) => new BadRequest(`malformed request: ${what}`);
  if (typeof r !== "object" || r === null || Array.isArray(r)) throw bad("not a JSON object");
  const q = r as Record<string, unknown>;
  if (typeof q.plugin !== "string") throw bad("plugin is not a string");
  if (typeof q.stdin !== "string") throw bad("stdin is not a string");
  if (typeof q.env !== "object" || q.env === null || Array.isArray(q.env)) throw bad("env is not an object");
  for (const [k, v] of Object.entries(q.env))
    if (typeof v !== "string") throw bad(`env ${k} is not a string`);
  const fileId = (v: unknown) =>
    typeof v === "object" &&
    v !== null &&
    Number.isInteger((v as FileIdentity).dev) &&
    Number.isInteger((v as FileIdentity).ino);
  if (!fileId(q.netns)) throw bad("netns is not a file identity");
  if (q.podNetns !== null && !fileId(q.podNetns)) throw bad("podNetns is not a file identity or null");
  if (!fileId(q.exe) || typeof (q.exe as { path?: unknown }).path !== "string")
    throw bad("exe is not an executable");
  return q as unknown as CallRequest;
}

export class CniServer {
  private server: Server | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly sockets = new Set<Socket>();
  private readonly ownNetns = identity("/proc/self/ns/net");
  private closing = false;

  constructor(private readonly o: CniServerOptions) {}

  /** Listens on the socket; a stale socket file (nobody answers) is replaced, a live one is an error. */
  async listen(): Promise<void> {
    const { path } = this.o;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (identity(path)) {
      if (await answers(path)) {
        throw new Error(`--cni-socket ${path}: another process serves it (another weftd?)`);
      }
      unlinkSync(path);
    }
    registerBuiltinPlugins(PLUGINS);
    // Half-open: the client ends its side after the request and still reads the reply.
    const server = createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    this.server = server;
    // Created 0600 from the start: no moment where another user could connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
  }

  /** Stops accepting, lets the calls in progress finish (up to `graceMs`), removes the socket file. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      unlinkSync(this.o.path);
    } catch {
      // already gone
    }
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.allSettled([...this.inflight]), timeout]);
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (d: Buffer) => {
      if (done) return;
      const nl = d.indexOf(10);
      const part = nl >= 0 ? d.subarray(0, nl) : d;
      size += part.length;
      if (size > MAX_REQUEST_BYTES) {
        done = true;
        return this.reply(sock, errorReply(`request larger than ${MAX_REQUEST_BYTES} bytes`));
      }
      chunks.push(part);
      if (nl >= 0) {
        done = true;
        this.handle(sock, Buffer.concat(chunks));
      }
    };
    sock.on("data", onData);
    sock.on("end", () => {
      if (done) return;
      done = true;
      // A request must end with its line break; anything else was cut short.
      this.reply(
        sock,
        errorReply(size === 0 ? "empty request" : "truncated request (no line break at its end)"),
      );
    });
  }

  private handle(sock: Socket, line: Buffer): void {
    const p = this.serve(line)
      .then((r) => this.reply(sock, r))
      .catch((err) => this.reply(sock, errorReply(`internal error: ${(err as Error).message}`)));
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private reply(sock: Socket, r: CallReply): void {
    if (sock.destroyed) return;
    sock.end(`${JSON.stringify(r)}\n`);
  }

  private async serve(line: Buffer): Promise<CallReply> {
    let req: CallRequest;
    try {
      req = checkRequest(JSON.parse(line.toString("utf8")));
    } catch (err) {
      const msg = err instanceof BadRequest ? err.message : `malformed request: ${(err as Error).message}`;
      return errorReply(msg);
    }
    const declined = this.declines(req);
    if (declined) return { v: PROTOCOL_VERSION, notServed: declined };
    const stdin = Buffer.from(req.stdin, "base64");
    if (stdin.length > STDIN_LIMIT) {
      return errorReply(`error reading from stdin: input exceeds ${STDIN_LIMIT} bytes`, ErrorCode.IOFailure);
    }
    const stderr: string[] = [];
    const caller: Caller = {
      env: req.env,
      // The client's executable, which this daemon sees as the same file (declines): its delegates that
      // are that file are weft's, and run here in-process as they would have in the client's process.
      self: { dev: req.exe.dev, ino: req.exe.ino },
      stderr: (t) => stderr.push(t),
    };
    const started = process.hrtime.bigint();
    const out = await runCall(await PLUGINS[req.plugin]!(), caller, () => stdin);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const ipamDir = ipamDirOf(stdin);
    this.o.log.debug("served a CNI call", {
      plugin: req.plugin,
      verb: req.env.CNI_COMMAND,
      cid: req.env.CNI_CONTAINERID || undefined,
      exit: out.exitCode,
      ms: Math.round(seconds * 1000),
    });
    this.o.onCall?.({
      plugin: req.plugin,
      verb: req.env.CNI_COMMAND ?? "",
      code: out.exitCode === 0 ? 0 : errorCodeOf(out.stdout),
      seconds,
      ...(ipamDir ? { ipamDir } : {}),
    });
    return { v: PROTOCOL_VERSION, stdout: out.stdout, stderr: stderr.join(""), exitCode: out.exitCode };
  }

  /** Why this daemon must not run the call (the client then runs it itself), or undefined. */
  private declines(req: CallRequest): string | undefined {
    if (req.v !== PROTOCOL_VERSION) return `protocol ${req.v} is not this weftd's ${PROTOCOL_VERSION}`;
    if (this.closing) return "weftd is stopping";
    if (!SERVED_PLUGINS.includes(req.plugin) || !PLUGINS[req.plugin]) return `no plugin ${req.plugin} here`;
    if (!same(req.netns, this.ownNetns)) return "not served here: the client is in another network namespace";
    // A daemon that does not see the client's executable (a container without the node's CNI bin dir)
    // would not find the delegates in CNI_PATH either.
    if (!same(identity(req.exe.path), req.exe)) {
      return `not served here: weftd does not see ${req.exe.path} as the client does (mount the node's CNI plugin directory into weftd)`;
    }
    const podNetns = req.env.CNI_NETNS;
    if (podNetns && req.podNetns && !same(identity(podNetns), req.podNetns)) {
      return `not served here: weftd cannot open ${podNetns} as the client sees it (mount /var/run/netns into weftd with HostToContainer propagation)`;
    }
    return undefined;
  }
}

function errorReply(msg: string, code: number = ErrorCode.Internal): CallReply {
  const e = new CniError(code, msg);
  return { v: PROTOCOL_VERSION, stdout: `${JSON.stringify(e.toJSON(), null, 4)}\n`, stderr: "", exitCode: 1 };
}

/** host-local's default data directory (the reference's). */
const HOST_LOCAL_DATA_DIR = "/var/lib/cni/networks";

/**
 * The `<dataDir>/<network>` a config's host-local addresses live in: flannel's (its own `ipam`, which it
 * hands to the delegate, host-local unless it names another type; the delegate may not carry one) or a
 * bridge/host-local config with host-local ipam. A glance at the JSON for /metrics only; the plugin
 * itself decodes the config.
 */
export function ipamDirOf(stdin: Buffer): string | undefined {
  try {
    const c = JSON.parse(stdin.toString("utf8")) as {
      name?: unknown;
      type?: unknown;
      ipam?: { type?: unknown; dataDir?: unknown };
    };
    if (typeof c.name !== "string" || c.name === "") return undefined;
    const ipam = c.type === "flannel" ? { type: "host-local", ...c.ipam } : c.ipam;
    if (ipam?.type !== "host-local") return undefined;
    const dir = typeof ipam.dataDir === "string" && ipam.dataDir !== "" ? ipam.dataDir : HOST_LOCAL_DATA_DIR;
    return `${dir}/${c.name}`;
  } catch {
    return undefined;
  }
}

function errorCodeOf(stdout: string): number {
  try {
    const c = (JSON.parse(stdout) as { code?: unknown }).code;
    return typeof c === "number" ? c : ErrorCode.Internal;
  } catch {
    return ErrorCode.Internal;
  }
}

/** Whether something accepts connections on the Unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
