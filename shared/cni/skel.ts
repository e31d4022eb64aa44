import { statSync, writeSync } from "node:fs";
import { createLogger, type Logger } from "../log.js";
import { WEFT_COMMIT, WEFT_VERSION } from "../version.js";
import { type CmdArgs, readEnv, validateAttachment, validateNetworkName } from "./env.js";
import { CniError, ErrorCode, toCniError } from "./errors.js";
import type { Plugin } from "./plugin.js";
import { formatResult } from "./results.js";
import { netConfSchema } from "./schemas.js";
import { readStdin } from "./stdin.js";
import type { NetConf, VersionInfo } from "./types.js";
import { validateSchema } from "./validate.js";
import { atLeast, CURRENT_VERSION, isSupported, SUPPORTED_VERSIONS } from "./versions.js";

export function aboutText(name: string): string {
  return (
    `CNI plugin ${name} (weft) version v${WEFT_VERSION} (${process.platform}/${process.arch}) commit ${WEFT_COMMIT}\n` +
    `CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`
  );
}

export function versionInfo(): VersionInfo {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** skel's config decode: JSON object (code 6), a valid name (code 7), then the shared schema. */
export async function decodeConfig(stdin: Buffer): Promise<NetConf> {
  let doc: unknown;
  try {
    doc = JSON.parse(stdin.toString("utf8"));
  } catch (err) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `error unmarshall network config: ${(err as Error).message}`,
    );
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
    throw new CniError(ErrorCode.DecodingFailure, "error unmarshall network config: not a JSON object");
  }
  const name = (doc as { name?: unknown }).name;
  if (name === undefined || name === "")
    throw new CniError(ErrorCode.InvalidNetworkConfig, "missing network name");
  if (typeof name === "string") validateNetworkName(name);
  const conf = await validateSchema<NetConf>(netConfSchema, doc);
  if (conf.cniVersion === undefined) conf.cniVersion = "";
  return conf;
}

function checkVersion(conf: NetConf): void {
  // An empty cniVersion decodes as 0.1.0.
  const v = conf.cniVersion === "" ? "0.1.0" : conf.cniVersion;
  if (!isSupported(v)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      "incompatible CNI versions",
      `config is ${JSON.stringify(conf.cniVersion)}, plugin supports [${SUPPORTED_VERSIONS.map((s) => JSON.stringify(s)).join(" ")}]`,
    );
  }
}

const VERB_FLOOR: Record<string, string> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };

function checkVerbAllowed(verb: string, conf: NetConf): void {
  const floor = VERB_FLOOR[verb];
  if (floor && !atLeast(conf.cniVersion || "0.1.0", floor)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `config version does not allow ${verb}`);
  }
}

/** skel refuses ADD/DEL into the plugin's own netns, unless CNI_NETNS_OVERRIDE says it is intended. */
function checkNotOwnNetns(args: CmdArgs): void {
  if (args.netns === "" || /^(1|true)$/i.test(args.netnsOverride)) return;
  try {
    const target = statSync(args.netns);
    const own = statSync("/proc/self/ns/net");
    if (target.ino === own.ino && target.dev === own.dev) {
      throw new CniError(
        ErrorCode.InvalidNetNS,
        "plugin's netns and netns from CNI_NETNS should not be the same",
      );
    }
  } catch (err) {
    if (err instanceof CniError) throw err;
    // A missing netns is the plugin's to judge (DEL after the pod is gone).
  }
}

/**
 * Runs one verb of `plugin` for `args` and returns the document to print (a result or version info), or
 * undefined. Throws CniError. Used both by the process entry point and by the in-process delegate path.
 */
export async function runVerb(plugin: Plugin, args: CmdArgs, log: Logger): Promise<object | undefined> {
  if (args.command === "VERSION") return versionInfo();
  const conf = await decodeConfig(args.stdin);
  validateAttachment(args);
  checkVersion(conf);
  checkVerbAllowed(args.command, conf);
  if (args.command === "ADD" || args.command === "DEL") checkNotOwnNetns(args);
  if (plugin.schema) await validateSchema(plugin.schema, conf);
  const ctx = {
    args,
    conf,
    log: log.toFile(typeof conf.logFile === "string" ? conf.logFile : undefined).with({
      verb: args.command,
      cid: args.containerId || undefined,
    }),
  };
  switch (args.command) {
    case "ADD": {
      if (!plugin.add) throw notYet(plugin, "ADD");
      return formatResult(await plugin.add(ctx), conf.cniVersion);
    }
    case "DEL":
      if (!plugin.del) throw notYet(plugin, "DEL");
      await plugin.del(ctx);
      return undefined;
    case "CHECK":
      if (!plugin.check) throw notYet(plugin, "CHECK");
      await plugin.check(ctx);
      return undefined;
    case "GC":
      await plugin.gc?.(ctx);
      return undefined;
    case "STATUS":
      await plugin.status?.(ctx);
      return undefined;
  }
}

function notYet(plugin: Plugin, verb: string): CniError {
  return new CniError(ErrorCode.InvalidEnvironment, `${plugin.name} does not implement ${verb} yet`);
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
}

/** The reference prints results and errors with Go's MarshalIndent(v, "", "    "), VERSION compact. */
function print(doc: object, compact = false): void {
  writeAll(1, `${compact ? JSON.stringify(doc) : JSON.stringify(doc, null, 4)}\n`);
}

function versionForError(stdin: Buffer | undefined): string {
  try {
    const v = JSON.parse(stdin?.toString("utf8") ?? "").cniVersion;
    if (typeof v === "string" && isSupported(v)) return v;
  } catch {
    // fall through
  }
  return CURRENT_VERSION;
}

/** The process entry point of a plugin: env + stdin in, one document on stdout, exit status 0 or 1. */
export async function pluginMain(plugin: Plugin): Promise<never> {
  const log = createLogger(plugin.name);
  let stdin: Buffer | undefined;
  try {
    const env = readEnv(process.env);
    if (!env) {
      process.stderr.write(aboutText(plugin.name));
      process.exit(0);
    }
    stdin = env.command === "VERSION" ? Buffer.alloc(0) : readStdin();
    const out = await runVerb(plugin, { ...env, stdin }, log);
    if (out) print(out, env.command === "VERSION");
    process.exit(0);
  } catch (err) {
    const e = toCniError(err);
    log.error(e.msg, { code: e.code, details: e.details || undefined });
    print(e.toJSON(versionForError(stdin)));
    process.exit(1);
  }
}
