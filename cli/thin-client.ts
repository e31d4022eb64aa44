/**
 * The plugin executables as thin clients of weftd. When a node's weftd serves CNI calls on its socket,
 * a plugin started by the runtime sends what it received (plugin name, environment, stdin) and prints
 * the daemon's answer, instead of loading and running the plugin itself: the call then costs Node's start
 * and one round trip. This module runs before the rest of the bundle is evaluated, so it imports only
 * Node's own modules and the wire format.
 *
 * When weftd is not there (no socket, connection refused, connect timeout) nothing was sent and the
 * executable does the work itself, so a node without weftd, or during its upgrade, still starts pods.
 * Once the request is sent, the client never runs it a second time by itself: a daemon that dies or stays
 * silent gives the runtime CNI error 11 (try again later), and the runtime's retry does the rest. A
 * daemon that cannot serve this call (another network namespace, a pod netns it cannot see, another
 * protocol) says so before doing anything, and the client then does the work itself.
 */
import { statSync } from "node:fs";
import { basename } from "node:path";
import {
  type CallReply,
  type CallRequest,
  DEFAULT_CNI_SOCKET,
  type FileIdentity,
  MAX_REQUEST_BYTES,
  MAX_STDIN_BYTES,
  PROTOCOL_VERSION,
  SERVED_PLUGINS,
  SERVED_VERBS,
  SOCKET_VAR,
} from "../shared/cni/socket-protocol.js";
import { readAll } from "../shared/fs/read-all.js";
import { writeAll } from "../shared/fs/write-all.js";
import { exchange } from "./unix-stream.js";

const CONNECT_TIMEOUT_MS = 2_000;
/** Longer than any call weft makes (host-local waits up to 60 s for its lock); the CRI's own is 2 min. */
const REPLY_TIMEOUT_MS = 110_000;

type Outcome = { done: true; exitCode: number } | { done: false; why: string };

function identity(path: string): FileIdentity | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** The error code of stat(path), or undefined when it succeeds. */
function statError(path: string): string | undefined {
  try {
    statSync(path);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? "stat failed";
  }
}

function msFrom(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return v && Number.isFinite(n) && n > 0 ? n : fallback;
}

/** The config's cniVersion for an error object, as skel reports errors in the config's version. */
function configVersion(stdin: Buffer): string {
  try {
    const v = (JSON.parse(stdin.toString("utf8")) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === "string" && /^\d+\.\d+\.\d+$/.test(v)) return v;
  } catch {
    // not JSON: the daemon would have said so; this is only for our own error
  }
  return "1.1.0";
}

/** CNI error 11 on stdout, as the plugin would print it, with the reason in msg. */
function tryAgainLater(stdin: Buffer, msg: string, details: string): number {
  const doc = { cniVersion: configVersion(stdin), code: 11, msg, details };
  writeAll(1, `${JSON.stringify(doc, null, 4)}\n`);
  return 1;
}

/**
 * Sends the call to weftd at `socketPath` and prints its answer. Resolves done:false when nothing was
 * sent or the daemon declined before doing anything (the caller then runs the plugin itself).
 */
function call(socketPath: string, line: string, stdin: Buffer, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const connectMs = msFrom(env.WEFT_CNI_CONNECT_TIMEOUT_MS, CONNECT_TIMEOUT_MS);
  const replyMs = msFrom(env.WEFT_CNI_REPLY_TIMEOUT_MS, REPLY_TIMEOUT_MS);
  return new Promise((resolve) => {
    let sent = false;
    let settled = false;
    const chunks: Buffer[] = [];
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.close();
      resolve(o);
    };
    const lost = (why: string) => {
      if (!sent) return finish({ done: false, why });
      finish({
        done: true,
        exitCode: tryAgainLater(
          stdin,
          `weftd did not complete the call: ${why}`,
          `socket ${socketPath}; the call may or may not have taken effect; the runtime's retry will redo or undo it`,
        ),
      });
    };
    const replied = () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (!text.endsWith("\n")) return lost("the connection closed before the reply (weftd stopped?)");
      let reply: CallReply;
      try {
        reply = JSON.parse(text) as CallReply;
      } catch {
        return lost("the reply is not JSON");
      }
      if ("notServed" in reply) return finish({ done: false, why: reply.notServed });
      if (reply.stderr) process.stderr.write(reply.stderr);
      if (reply.stdout) writeAll(1, reply.stdout);
      finish({ done: true, exitCode: reply.exitCode === 0 ? 0 : 1 });
    };
    let timer = setTimeout(() => lost(`no connection within ${connectMs} ms`), connectMs);
    const conn = exchange(socketPath, line, {
      connected: () => {
        clearTimeout(timer);
        timer = setTimeout(() => lost(`no reply within ${replyMs} ms`), replyMs);
        sent = true;
      },
      data: (d) => chunks.push(d),
      ended: (error) => (error ? lost(error) : replied()),
    });
  });
}

/**
 * Serves this process's call through weftd when it can; returns the exit status, or undefined when the
 * executable must do the work itself (not a served call, no daemon, or the daemon declined). Reads stdin
 * only when it sends the call; the stdin it read is then kept for the local path (`stdin()` below).
 */
export async function forwardToDaemon(env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  const plugin = env.WEFT_MULTICALL_NAME || basename(process.argv0);
  if (!SERVED_PLUGINS.includes(plugin)) return undefined;
  if (!SERVED_VERBS.includes(env.CNI_COMMAND ?? "")) return undefined;
  const socketPath = env[SOCKET_VAR] ?? DEFAULT_CNI_SOCKET;
  // WEFT_CNI_SOCKET_DEBUG: every call that could have gone to a daemon and did not says why on stderr,
  // so "is the fast path used?" has an answer on the node (and the tests count these lines).
  const off = socketPath === "" || socketPath === "off";
  const local = (why: string) => {
    if (env.WEFT_CNI_SOCKET_DEBUG)
      process.stderr.write(`weft: ${off ? "the CNI socket" : socketPath} not used: ${why}\n`);
    return undefined;
  };
  if (off) return local(`${SOCKET_VAR}=${socketPath}`);
  // No socket file: no daemon; the common case on a node without weftd costs one stat.
  const unreachable = statError(socketPath);
  if (unreachable === "ENOENT" || unreachable === "ENOTDIR")
    return local("no such socket (no weftd serves CNI calls on this node)");
  // EACCES: not root (the socket and its directory are root's only); connecting would fail the same way.
  if (unreachable) return local(unreachable);
  const netns = identity("/proc/self/ns/net");
  const exe = identity(process.execPath);
  if (!netns || !exe) return local(`cannot identify ${netns ? process.execPath : "/proc/self/ns/net"}`);
  // Read as the plugin reads it (skel's readStdin): past the plugin's own limit, a runaway writer is not
  // read further here either.
  const stdin = readAll(0, MAX_STDIN_BYTES);
  forwardedStdin = stdin;
  // More than the plugin accepts: it says so itself (the local path sees the same bytes and the limit).
  if (stdin.length > MAX_STDIN_BYTES) return local(`stdin is larger than ${MAX_STDIN_BYTES} bytes`);
  const callEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    if (v !== undefined && k !== "WEFT_MULTICALL_NAME") callEnv[k] = v;
  const req: CallRequest = {
    v: PROTOCOL_VERSION,
    plugin,
    env: callEnv,
    stdin: stdin.toString("base64"),
    netns,
    podNetns: env.CNI_NETNS ? identity(env.CNI_NETNS) : null,
    exe: { path: process.execPath, ...exe },
  };
  const line = `${JSON.stringify(req)}\n`;
  if (Buffer.byteLength(line) > MAX_REQUEST_BYTES)
    return local(`the request would be larger than ${MAX_REQUEST_BYTES} bytes`);
  const o = await call(socketPath, line, stdin, env);
  if (o.done) return o.exitCode;
  return local(o.why);
}

let forwardedStdin: Buffer | undefined;

/** stdin already read by forwardToDaemon for a call it then left to this process, if any. */
export function takeForwardedStdin(): Buffer | undefined {
  const b = forwardedStdin;
  forwardedStdin = undefined;
  return b;
}
