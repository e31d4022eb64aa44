import { statSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../log.js";
import { mayEnter } from "./delegation.js";
import { type Caller, type CmdArgs, callerOf, DELEGATION_VAR, splitPath, type Verb } from "./env.js";
import { CniError, ErrorCode, toCniError } from "./errors.js";
import { goQuote } from "./goquote.js";
import { JsonSyntaxError, scanJson } from "./json-scan.js";
import type { Plugin } from "./plugin.js";
import { runVerb } from "./skel.js";

/**
 * Calling another plugin the way libcni's `invoke` package does, with a fast path: when the executable
 * found in CNI_PATH is this very multi-call binary, the delegate runs in this process instead of paying
 * for a second process start.
 */

type PluginLoader = () => Promise<Plugin>;
const builtins = new Map<string, PluginLoader>();

/** The multi-call entry registers the plugins it carries, so invoke can run them in-process. */
export function registerBuiltinPlugins(plugins: Record<string, PluginLoader>): void {
  for (const [name, load] of Object.entries(plugins)) builtins.set(name, load);
}

/** invoke.FindInPath: the first regular file named `plugin` in `paths`. */
export function findInPath(plugin: string, paths: string[]): string {
  if (plugin === "") throw new CniError(ErrorCode.Internal, "no plugin name provided");
  if (plugin.includes("/")) throw new CniError(ErrorCode.Internal, `invalid plugin name: ${plugin}`);
  if (paths.length === 0) throw new CniError(ErrorCode.Internal, "no paths provided");
  for (const dir of paths) {
    const full = join(dir, plugin);
    try {
      if (statSync(full).isFile()) return full;
    } catch {
      // not here; try the next directory
    }
  }
  throw new CniError(
    ErrorCode.Internal,
    `failed to find plugin ${goQuote(plugin)} in path [${paths.join(" ")}]`,
  );
}

/** Whether `path` is the very file the caller runs as (so its plugins are the ones built in here). */
function isCallersExecutable(path: string, caller: Caller): boolean {
  const self = caller.self;
  if (!self) return false;
  try {
    const st = statSync(path);
    return st.dev === self.dev && st.ino === self.ino;
  } catch {
    return false;
  }
}

/**
 * The environment a delegate sees: the caller's, with the call's CNI_* values and the verb replaced, and the
 * delegation chain of this call (args.delegation, which ends with the delegate's own type).
 */
export function delegateEnv(args: CmdArgs, verb: Verb): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(callerOf(args).env)) if (v !== undefined) env[k] = v;
  Object.assign(env, {
    CNI_COMMAND: verb,
    CNI_CONTAINERID: args.containerId,
    CNI_NETNS: args.netns,
    CNI_IFNAME: args.ifname,
    CNI_ARGS: args.args,
    CNI_PATH: args.path,
  });
  if (args.delegation?.length) env[DELEGATION_VAR] = args.delegation.join("/");
  else delete env[DELEGATION_VAR];
  return env;
}

/**
 * The spec's codes for a call the plugin refuses as such (its version, a field, its environment, a config
 * it cannot decode or accept): the same config and environment are refused on every retry. Anything else
 * (the reference plugins report most failures as 999) may pass on a retry.
 */
const REFUSAL_CODES: ReadonlySet<number> = new Set([
  ErrorCode.IncompatibleVersion,
  ErrorCode.UnsupportedField,
  ErrorCode.InvalidEnvironment,
  ErrorCode.DecodingFailure,
  ErrorCode.InvalidNetworkConfig,
]);

/** Whether a delegate's error refuses the call as such (see REFUSAL_CODES). */
export function isRefusal(err: unknown): boolean {
  return REFUSAL_CODES.has(toCniError(err).code);
}

/** The same error object (code, msg, details): what a delegate answers when it fails before any state. */
export function sameError(a: unknown, b: unknown): boolean {
  const x = toCniError(a);
  const y = toCniError(b);
  return x.code === y.code && x.msg === y.msg && x.details === y.details;
}

/**
 * Go's words for what JSON.parse refused ("invalid character 'u' looking for beginning of value"), as the
 * reference's json.Unmarshal reports it; undefined if the scanner takes the text after all.
 */
function goSyntaxError(text: string): string | undefined {
  try {
    scanJson(text);
    return undefined;
  } catch (err) {
    return err instanceof JsonSyntaxError ? err.message : undefined;
  }
}

/** Turns a failed plugin's output into the error, as invoke's RawExec.pluginErr does. */
export function pluginError(stdout: string, stderr: string, exitMessage: string): CniError {
  if (stdout.length === 0) {
    if (stderr.length === 0) return new CniError(0, `netplugin failed with no error message: ${exitMessage}`);
    return new CniError(0, `netplugin failed: ${goQuote(stderr)}: ${exitMessage}`);
  }
  const unparsable = (why: string, cause?: unknown) =>
    new CniError(
      0,
      `netplugin failed but error parsing its diagnostic message ${goQuote(stdout)}: ${why}`,
      "",
      cause === undefined ? undefined : { cause },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (err) {
    return unparsable(goSyntaxError(stdout) ?? (err as Error).message, err);
  }
  // Go decodes into its Error struct: null leaves it empty, other non-objects fail.
  if (doc !== null && (typeof doc !== "object" || Array.isArray(doc))) {
    return unparsable("not a JSON object");
  }
  const e = (doc ?? {}) as { code?: unknown; msg?: unknown; details?: unknown };
  return new CniError(
    typeof e.code === "number" ? e.code : 0,
    typeof e.msg === "string" ? e.msg : "",
    typeof e.details === "string" ? e.details : "",
  );
}

// Go's syscall signal names and strerror texts, for the "%v" of an exec error.
const SIGNAL_TEXT: Record<string, string> = {
  SIGHUP: "hangup",
  SIGINT: "interrupt",
  SIGQUIT: "quit",
  SIGILL: "illegal instruction",
  SIGTRAP: "trace/breakpoint trap",
  SIGABRT: "aborted",
  SIGBUS: "bus error",
  SIGFPE: "floating point exception",
  SIGKILL: "killed",
  SIGUSR1: "user defined signal 1",
  SIGSEGV: "segmentation fault",
  SIGUSR2: "user defined signal 2",
  SIGPIPE: "broken pipe",
  SIGALRM: "alarm clock",
  SIGTERM: "terminated",
};
const ERRNO_TEXT: Record<string, string> = {
  EACCES: "permission denied",
  ENOENT: "no such file or directory",
  ENOEXEC: "exec format error",
  ETXTBSY: "text file busy",
  EISDIR: "is a directory",
  ENOMEM: "cannot allocate memory",
};

/** What Go's exec.Cmd.Run error prints: "exit status 1", "signal: killed", "fork/exec /p: ...". */
export function execErrorText(
  path: string,
  r: { exitCode?: number | undefined; signal?: string | undefined; code?: string | undefined },
): string {
  if (r.signal) return `signal: ${SIGNAL_TEXT[r.signal] ?? r.signal}`;
  if (r.exitCode !== undefined) return `exit status ${r.exitCode}`;
  return `fork/exec ${path}: ${(r.code && ERRNO_TEXT[r.code]) || r.code || "unknown error"}`;
}

const TEXT_BUSY_RETRIES = 5;

async function execPlugin(
  path: string,
  stdin: Buffer,
  env: Record<string, string>,
  caller: Caller,
): Promise<string> {
  const { execa } = await import("execa");
  for (let attempt = 0; ; attempt++) {
    const r = await execa(path, [], {
      input: stdin,
      env,
      extendEnv: false,
      reject: false,
      stripFinalNewline: false,
    });
    // libcni retries a binary that is being replaced ("text file busy") up to 5 times, a second apart.
    if (r.code === "ETXTBSY" && attempt < TEXT_BUSY_RETRIES) {
      await new Promise((res) => setTimeout(res, 1000));
      continue;
    }
    if (r.failed) throw pluginError(String(r.stdout ?? ""), String(r.stderr ?? ""), execErrorText(path, r));
    // Like RawExec, pass a successful plugin's stderr on; a failed one's is in the error.
    if (r.stderr) caller.stderr(String(r.stderr));
    return String(r.stdout);
  }
}

/**
 * Runs `verb` of the plugin called `type` with `conf` on stdin and the caller's CNI_* values. Returns the
 * delegate's parsed output (a result for ADD, with cniVersion filled in as fixupResultVersion does).
 */
export async function invokeDelegate(
  verb: Verb,
  type: string,
  conf: Buffer | string,
  args: CmdArgs,
): Promise<Record<string, unknown> | undefined> {
  const delegation = [...(args.delegation ?? []), type];
  const caller = callerOf(args);
  if (!mayEnter(verb, delegation, caller)) return undefined;
  const path = findInPath(type, splitPath(args.path));
  const stdin = Buffer.isBuffer(conf) ? conf : Buffer.from(conf);
  const call: CmdArgs = { ...args, command: verb, stdin, delegation };
  let out: object | undefined;
  const load = builtins.get(type);
  if (load && isCallersExecutable(path, caller)) {
    const plugin = await load();
    out = await runVerb(plugin, call, createLogger(type, caller.env, caller.stderr));
  } else {
    const stdout = await execPlugin(path, stdin, delegateEnv(call, verb), caller);
    if (verb !== "ADD" && verb !== "VERSION") return undefined;
    try {
      // Go unmarshals into a map, so a "null" result is an empty one.
      out = (JSON.parse(stdout) as object | null) ?? {};
    } catch (err) {
      throw new CniError(
        ErrorCode.Internal,
        `failed to unmarshal raw result: ${(err as Error).message}`,
        "",
        {
          cause: err,
        },
      );
    }
  }
  if (!out) return undefined;
  const doc = out as Record<string, unknown>;
  if (verb === "ADD" && (typeof doc.cniVersion !== "string" || doc.cniVersion === "")) {
    // invoke's fixupResultVersion: a result without a version is in the config's (DecodeVersion: "" is 0.1.0).
    let v: unknown;
    try {
      v = (JSON.parse(stdin.toString("utf8")) as { cniVersion?: unknown } | null)?.cniVersion;
    } catch (err) {
      const msg = `decoding version from network config: ${(err as Error).message}`;
      throw new CniError(ErrorCode.Internal, msg, "", { cause: err });
    }
    doc.cniVersion = typeof v === "string" && v !== "" ? v : "0.1.0";
  }
  return doc;
}
