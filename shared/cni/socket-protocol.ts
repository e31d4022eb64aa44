/**
 * The wire between a plugin executable (the thin client, cli/thin-client.ts) and weftd serving its call
 * (daemon/cni-server.ts) over a Unix socket: one request line and one reply line, each a JSON object
 * ended by "\n" (stdin travels base64, so no line break can be inside). This module has no imports:
 * the thin client loads it before anything else of the bundle.
 */

/** Bumped on any change a peer of the other version would misread; a mismatch is "not served here". */
export const PROTOCOL_VERSION = 1;

/** Where weftd listens unless --cni-socket says otherwise, and where a plugin looks unless told. */
export const DEFAULT_CNI_SOCKET = "/run/weft/cni.sock";

/** The variable that points a plugin at another socket ("" or "off": never use a daemon). */
export const SOCKET_VAR = "WEFT_CNI_SOCKET";

/**
 * The most stdin a plugin accepts: STDIN_LIMIT of shared/cni/stdin.ts (a unit test keeps them equal;
 * this module imports nothing). A client with more does not send it: the plugin then refuses it itself,
 * in its own words.
 */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

/**
 * A request holds a CNI config (a few KiB, MAX_STDIN_BYTES at most, base64: 4/3 of it), the environment
 * (the kernel caps a process's arguments and environment together at 2 MiB with the default 8 MiB
 * stack) and a little more. A line longer than this is refused without being read further; a client
 * whose request would be longer does the work itself.
 */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

/** The calls a daemon may serve: the verbs that change or inspect a node. VERSION is answered locally. */
export const SERVED_VERBS: readonly string[] = ["ADD", "DEL", "CHECK", "GC", "STATUS"];

/** The plugins weft carries (cli/plugins.ts); only these names are forwarded. */
export const SERVED_PLUGINS: readonly string[] = ["flannel", "bridge", "host-local", "portmap"];

/** A file as the client sees it, so the daemon can tell whether it sees the same one. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

export interface CallRequest {
  v: number;
  /** The plugin the executable was run as. */
  plugin: string;
  /** The environment the plugin was executed with (CNI_* and everything else a delegate inherits). */
  env: Record<string, string>;
  /** stdin, base64. */
  stdin: string;
  /** The client's network namespace (/proc/self/ns/net): a daemon in another one must not serve it. */
  netns: FileIdentity;
  /** CNI_NETNS as the client sees it (null: absent or unreadable). */
  podNetns: FileIdentity | null;
  /** The executable the client runs as (its delegates that are this file may run in the daemon). */
  exe: { path: string } & FileIdentity;
}

/** The daemon's answer: what the plugin would have printed, or that the client must do it itself. */
export type CallReply =
  | { v: number; stdout: string; stderr: string; exitCode: number }
  | { v: number; notServed: string };
