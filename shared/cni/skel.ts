import { statSync, writeSync } from "node:fs";
import { createLogger, type Logger } from "../log.js";
import { WEFT_COMMIT, WEFT_VERSION } from "../version.js";
import {
  type CmdArgs,
  isVerb,
  readEnvVars,
  unknownCommand,
  validateAttachment,
  validateNetworkName,
} from "./env.js";
import { CniError, ErrorCode, toCniError } from "./errors.js";
import { goQuote, goQuoteList } from "./goquote.js";
import { goJsonSyntaxError } from "./json-syntax.js";
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

const GO_CONF_TYPE = 'struct { Name string "json:\\"name\\"" }';

/** The JSON kind Go's decoder names in "cannot unmarshal <kind>". */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v;
}

/**
 * skel's validateConfig plus DecodeVersion: a JSON object (code 6; null reads as {}), a string name
 * (code 6), present and valid (code 7), and a string cniVersion (code 6). Texts as the Go decoder words
 * them (lab: bridge v1.1.1). Nothing else of the config is looked at yet.
 */
function decodeEnvelope(stdin: Buffer): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(stdin.toString("utf8"));
  } catch (err) {
    // Go's words for the syntax error (JSON.parse's are V8's); JSON.parse's only if the two disagree.
    const msg = goJsonSyntaxError(stdin) ?? (err as Error).message;
    throw new CniError(ErrorCode.DecodingFailure, `error unmarshall network config: ${msg}`);
  }
  if (doc !== null && (typeof doc !== "object" || Array.isArray(doc))) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `error unmarshall network config: json: cannot unmarshal ${jsonKind(doc)} into Go value of type ${GO_CONF_TYPE}`,
    );
  }
  const obj = (doc ?? {}) as Record<string, unknown>;
  const name = obj.name ?? "";
  if (typeof name !== "string") {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `error unmarshall network config: json: cannot unmarshal ${jsonKind(name)} into Go struct field .name of type string`,
    );
  }
  if (name === "") throw new CniError(ErrorCode.InvalidNetworkConfig, "missing network name");
  validateNetworkName(name);
  // Go decodes a null as the empty string.
  if (obj.cniVersion === null) obj.cniVersion = "";
  const version = obj.cniVersion ?? "";
  if (typeof version !== "string") {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `decoding version from network config: json: cannot unmarshal ${jsonKind(version)} into Go struct field .cniVersion of type string`,
    );
  }
  return obj;
}

/** skel's config decode (codes 6 and 7) followed by the shared netconf schema (codes 7 and 2). */
export async function decodeConfig(stdin: Buffer): Promise<NetConf> {
  return withSchema(decodeEnvelope(stdin));
}

async function withSchema(doc: Record<string, unknown>): Promise<NetConf> {
  const conf = await validateSchema<NetConf>(netConfSchema, doc);
  if (conf.cniVersion === undefined) conf.cniVersion = "";
  return conf;
}

function checkVersion(version: string): void {
  if (!isSupported(version)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      "incompatible CNI versions",
      `config is ${goQuote(version)}, plugin supports ${goQuoteList(SUPPORTED_VERSIONS)}`,
    );
  }
}

const VERB_FLOOR: Record<string, string> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };

function atLeastOrDecodeError(version: string, floor: string): boolean {
  try {
    return atLeast(version, floor);
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, (err as Error).message);
  }
}

/** skel's gates for the newer verbs: the config's version, then some supported version as high. */
function checkVerbAllowed(verb: string, version: string): void {
  const floor = VERB_FLOOR[verb];
  if (!floor) return;
  if (!atLeastOrDecodeError(version, floor)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `config version does not allow ${verb}`);
  }
  if (!SUPPORTED_VERSIONS.some((v) => atLeastOrDecodeError(v, version))) {
    throw new CniError(ErrorCode.IncompatibleVersion, `plugin version does not allow ${verb}`);
  }
}

/**
 * skel refuses ADD/DEL into the plugin's own netns, unless CNI_NETNS_OVERRIDE says it is intended.
 * skel checks after the plugin ran (and had already changed the wrong netns); weft checks before.
 */
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
  // skel's order: environment, config name, version gates, then what the plugin parses.
  validateAttachment(args);
  const doc = decodeEnvelope(args.stdin);
  // DecodeVersion: no cniVersion means 0.1.0.
  const version = (doc.cniVersion as string | undefined) || "0.1.0";
  checkVerbAllowed(args.command, version);
  checkVersion(version);
  const conf = await withSchema(doc);
  if (plugin.schema) await validateSchema(plugin.schema, conf);
  if (args.command === "ADD" || args.command === "DEL") checkNotOwnNetns(args);
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
    const env = readEnvVars(process.env);
    if (!env) {
      process.stderr.write(aboutText(plugin.name));
      process.exit(0);
    }
    stdin = env.command === "VERSION" ? Buffer.alloc(0) : readStdin();
    if (!isVerb(env.command)) {
      // skel decodes the config before it looks at the command.
      decodeEnvelope(stdin);
      throw unknownCommand(env.command);
    }
    const out = await runVerb(plugin, { ...env, command: env.command, stdin }, log);
    if (out) print(out, env.command === "VERSION");
    process.exit(0);
  } catch (err) {
    const e = toCniError(err);
    log.error(e.msg, { code: e.code, details: e.details || undefined });
    print(e.toJSON(versionForError(stdin)));
    process.exit(1);
  }
}
