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
}

type Env = Record<string, string | undefined>;

// The order skel checks (and reports) the variables in, and the verbs each one is required for.
const REQUIRED: Array<[name: string, verbs: readonly string[]]> = [
  ["CNI_COMMAND", VERBS],
  ["CNI_CONTAINERID", ["ADD", "CHECK", "DEL"]],
  ["CNI_NETNS", ["ADD", "CHECK"]],
  ["CNI_IFNAME", ["ADD", "CHECK", "DEL"]],
  ["CNI_ARGS", []],
  ["CNI_PATH", ["ADD", "CHECK", "DEL", "GC", "STATUS"]],
  ["CNI_NETNS_OVERRIDE", []],
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_IFNAME = 15;

export function validateContainerId(id: string): void {
  if (!NAME_RE.test(id))
    throw new CniError(ErrorCode.InvalidEnvironment, "invalid characters in containerID", id);
}

export function validateNetworkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "invalid characters found in network name", name);
  }
}

/** The kernel's rules for a link name (dev_valid_name), with skel's messages. */
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
  if (/[/:\s]/u.test(ifname)) throw bad("interface name contains / or : or whitespace characters");
}

/**
 * Reads the CNI_* variables and checks the ones the verb needs. Returns undefined when CNI_COMMAND is
 * unset, which is the "run by hand" case. Stdin is read later (VERSION ignores it).
 */
export function readEnv(env: Env): Omit<CmdArgs, "stdin"> | undefined {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") return undefined;
  const missing = REQUIRED.filter(([name, verbs]) => !env[name] && verbs.includes(command)).map(([n]) => n);
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(",")}] missing`);
  }
  if (!(VERBS as readonly string[]).includes(command)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  return {
    command: command as Verb,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifname: env.CNI_IFNAME ?? "",
    args: env.CNI_ARGS ?? "",
    path: env.CNI_PATH ?? "",
    netnsOverride: env.CNI_NETNS_OVERRIDE ?? "",
  };
}

/** skel validates the container ID and interface name after the config decoded; GC and STATUS carry none. */
export function validateAttachment(args: Pick<CmdArgs, "command" | "containerId" | "ifname">): void {
  if (args.containerId !== "") validateContainerId(args.containerId);
  if (args.ifname !== "" || ["ADD", "CHECK", "DEL"].includes(args.command)) validateIfname(args.ifname);
}

/** CNI_PATH as a list of directories. */
export function splitPath(path: string): string[] {
  return path.split(":").filter((p) => p !== "");
}
