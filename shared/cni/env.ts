import { statSync } from "node:fs";
import { CniError, ErrorCode } from "./errors.js";

export const VERBS = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"] as const;
export type Verb = (typeof VERBS)[number];

/** What skel's CmdArgs carries: the environment of one call plus its stdin. */
export interface CmdArgs {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
  netnsOverride: string;
  stdin: Buffer;
  /**
   * The plugin types this call went through, from the one the runtime ran down to the one running it
   * (see invoke.ts: delegation loops). Carried in-process through CmdArgs and to executed delegates in
   * WEFT_DELEGATION, never through this process's own environment: one process may serve several calls.
   */
  delegation?: readonly string[];
  /**
   * Who made the call, when it is not this process (weftd serving a thin client): its environment, its
   * executable and where its diagnostics go. Absent: this process is the plugin (processCaller()).
   */
  caller?: Caller;
}

/**
 * What a plugin process would take from its own process: one call's environment (delegates inherit it,
 * WEFT_LOG_* are read from it), the executable it runs as (delegates that are this same file run
 * in-process) and its stderr. weftd serves calls from many clients in one process, so none of these
 * may come from weftd's own process.
 */
export interface Caller {
  env: Readonly<Env>;
  /** The file the plugin was executed as (dev and inode); null when it is not a weft executable. */
  self: { dev: number; ino: number } | null;
  stderr(text: string): void;
}

let processCallerValue: Caller | undefined;

/** This process as the caller: its environment, its executable, its stderr. */
export function processCaller(): Caller {
  processCallerValue ??= {
    env: process.env,
    self: executableIdentity(process.execPath),
    stderr: (text) => process.stderr.write(text),
  };
  return processCallerValue;
}

/** The caller of a call: the one it names, or this process. */
export function callerOf(args: Pick<CmdArgs, "caller">): Caller {
  return args.caller ?? processCaller();
}

/** Device and inode of a weft executable at `path`; null for a plain `node` (tests) or an unreadable file. */
export function executableIdentity(path: string): { dev: number; ino: number } | null {
  // Only a packaged weft is a plugin executable; a plain `node` running tests is not.
  if (path.endsWith("/node")) return null;
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

type Env = Record<string, string | undefined>;

// skel's variables in the order it checks (and reports) them, the verbs that need each, and its check.
const VARS: Array<[name: string, verbs: readonly string[], check?: (v: string) => void]> = [
  ["CNI_COMMAND", ["ADD", "CHECK", "DEL", "GC", "STATUS"]],
  ["CNI_CONTAINERID", ["ADD", "CHECK", "DEL"], (v) => validateContainerId(v)],
  ["CNI_NETNS", ["ADD", "CHECK"]],
  ["CNI_IFNAME", ["ADD", "CHECK", "DEL"], (v) => validateIfname(v)],
  ["CNI_ARGS", []],
  ["CNI_PATH", ["ADD", "CHECK", "DEL", "GC", "STATUS"]],
  ["CNI_NETNS_OVERRIDE", []],
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_IFNAME = 15;
// Go's unicode.IsSpace set; JavaScript's \s lacks U+0085 and adds U+FEFF.
const IFNAME_BAD_RE = /[/:\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** utils.ValidateContainerID. Through skel an empty ID is reported as missing (code 4) before this runs. */
export function validateContainerId(id: string): void {
  if (id === "") throw new CniError(ErrorCode.UnknownContainer, "missing containerID");
  if (!NAME_RE.test(id))
    throw new CniError(ErrorCode.InvalidEnvironment, "invalid characters in containerID", id);
}

/**
 * A container ID that does not fit where a plugin must keep it (flannel: a file name; portmap's nftables
 * backend: a rule comment). skel checks only its characters, so each plugin checks the length it needs,
 * before it changes anything, and says so instead of failing half-way with the kernel's or the file
 * system's error. `where` completes "too long for ...".
 */
export function checkContainerIdLength(containerId: string, limit: number, where: string): void {
  const bytes = Buffer.byteLength(containerId);
  if (bytes <= limit) return;
  throw new CniError(
    ErrorCode.InvalidEnvironment,
    `CNI_CONTAINERID is too long for ${where}: ${bytes} bytes, at most ${limit}`,
  );
}

/** utils.ValidateNetworkName (its "missing" message really ends in a colon). */
export function validateNetworkName(name: string): void {
  if (name === "") throw new CniError(ErrorCode.InvalidNetworkConfig, "missing network name:");
  if (!NAME_RE.test(name)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "invalid characters found in network name", name);
  }
}

/** The kernel's rules for a link name (dev_valid_name), with utils.ValidateInterfaceName's messages. */
export function validateIfname(ifname: string): void {
  const bad = (msg: string, details = "") => new CniError(ErrorCode.InvalidEnvironment, msg, details);
  if (ifname.length === 0) throw bad("interface name is empty");
  if (Buffer.byteLength(ifname) > MAX_IFNAME) {
    throw bad(
      "interface name is too long",
      `interface name should be less than ${MAX_IFNAME + 1} characters`,
    );
  }
  if (ifname === "." || ifname === "..") throw bad("interface name is . or ..");
  if (IFNAME_BAD_RE.test(ifname)) throw bad("interface name contains / or : or whitespace characters");
}

/** The variable that carries CmdArgs.delegation to an executed delegate: types joined by "/". */
export const DELEGATION_VAR = "WEFT_DELEGATION";

/** "/" cannot be part of a plugin name (findInPath refuses it), so it separates the chain's types. */
export function parseDelegation(value: string | undefined): string[] {
  return (value ?? "").split("/").filter((t) => t !== "");
}

/** What readEnvVars returns: CmdArgs without stdin, the command not yet known to be a verb. */
export type EnvVars = Omit<CmdArgs, "stdin" | "command"> & { command: string };

/**
 * skel's getCmdArgsFromEnv: collects the variables the command needs, validating each present one as it
 * goes (the first invalid one wins, even over missing ones), then reports all missing ones at once.
 * Returns undefined when CNI_COMMAND is unset, which is the "run by hand" case. Unknown commands pass:
 * skel decodes the config before it rejects them.
 */
export function readEnvVars(env: Env): EnvVars | undefined {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") return undefined;
  const missing: string[] = [];
  for (const [name, verbs, check] of VARS) {
    const value = env[name] ?? "";
    if (!verbs.includes(command)) continue;
    if (value === "") missing.push(name);
    else check?.(value);
  }
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(",")}] missing`);
  }
  return {
    command,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifname: env.CNI_IFNAME ?? "",
    args: env.CNI_ARGS ?? "",
    path: env.CNI_PATH ?? "",
    netnsOverride: env.CNI_NETNS_OVERRIDE ?? "",
    delegation: parseDelegation(env[DELEGATION_VAR]),
  };
}

export function isVerb(command: string): command is Verb {
  return (VERBS as readonly string[]).includes(command);
}

export function unknownCommand(command: string): CniError {
  return new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
}

/** readEnvVars, with an unknown command rejected at once (code 4). */
export function readEnv(env: Env): Omit<CmdArgs, "stdin"> | undefined {
  const vars = readEnvVars(env);
  if (!vars) return undefined;
  if (!isVerb(vars.command)) throw unknownCommand(vars.command);
  return { ...vars, command: vars.command };
}

/** The checks skel applies to CNI_CONTAINERID and CNI_IFNAME; only ADD, CHECK and DEL carry them. */
export function validateAttachment(args: Pick<CmdArgs, "command" | "containerId" | "ifname">): void {
  if (!["ADD", "CHECK", "DEL"].includes(args.command)) return;
  validateContainerId(args.containerId);
  validateIfname(args.ifname);
}

/** CNI_PATH as a list of directories. */
export function splitPath(path: string): string[] {
  return path.split(":").filter((p) => p !== "");
}
