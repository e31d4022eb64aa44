import { statSync } from "node:fs";
import { writeAll } from "../fs/write-all.js";

import { createLogger, type Logger } from "../log.js";
import { WEFT_COMMIT, WEFT_VERSION } from "../version.js";
import { chainOnStart, mayEnter } from "./delegation.js";
import {
  type Caller,
  type CmdArgs,
  callerOf,
  isVerb,
  processCaller,
  readEnvVars,
  unknownCommand,
  validateAttachment,
  validateNetworkName,
} from "./env.js";
import { CniError, ErrorCode, toCniError, wrapError } from "./errors.js";
import { embedSchema, goDecode } from "./go-decode.js";
import { goQuote, goQuoteList } from "./goquote.js";
import { type JsonNode, JsonNumber, JsonObject, scanJson } from "./json-scan.js";
import type { Plugin } from "./plugin.js";
import { formatResult } from "./results.js";
import { type JsonSchema, netConfSchema } from "./schemas.js";
import { checkStdinSize, readStdin } from "./stdin.js";
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

/** What skel's validateConfig decodes first, and then version.ConfigDecoder: Go structs, so keys fold. */
const nameSchema: JsonSchema = { type: "object", properties: { name: { type: "string" } } };
const versionSchema: JsonSchema = { type: "object", properties: { cniVersion: { type: "string" } } };

/** The JSON kind Go's decoder names in "cannot unmarshal <kind>". */
function jsonKind(v: JsonNode): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  if (v instanceof JsonNumber) return "number";
  return typeof v;
}

/** A Go decode step: its errors become code 6 with the reference's prefix. */
function decodeStep<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, `${prefix}: ${(err as Error).message}`, "", { cause: err });
  }
}

/**
 * skel's validateConfig plus DecodeVersion: JSON (code 6, Go's scanner texts), an object (null reads as
 * {}), a string name (code 6), present and valid (code 7), and a string cniVersion (code 6). Both read
 * the document into Go structs, so `{"Name":"x"}` names the network as it does for the reference.
 * Returns the parsed document for the plugin's own decode and the version ("" when absent).
 */
function decodeEnvelope(stdin: Buffer): { doc: JsonNode; version: string } {
  const prefix = "error unmarshall network config";
  const doc = decodeStep(prefix, () => scanJson(stdin.toString("utf8")));
  if (doc !== null && !(doc instanceof JsonObject)) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      `${prefix}: json: cannot unmarshal ${jsonKind(doc)} into Go value of type ${GO_CONF_TYPE}`,
    );
  }
  const { name = "" } = decodeStep(prefix, () => goDecode(doc, nameSchema)) as { name?: string };
  if (name === "") throw new CniError(ErrorCode.InvalidNetworkConfig, "missing network name");
  validateNetworkName(name);
  const { cniVersion = "" } = decodeStep("decoding version from network config", () =>
    goDecode(doc, versionSchema),
  ) as { cniVersion?: string };
  return { doc, version: cniVersion };
}

const pluginSchemas = new WeakMap<JsonSchema, JsonSchema>();

/** The plugin's config struct with types.NetConf embedded, as the reference declares it. */
function confSchemaOf(plugin: Plugin | undefined): JsonSchema {
  if (!plugin?.schema) return netConfSchema;
  let s = pluginSchemas.get(plugin.schema);
  if (!s) {
    s = embedSchema(plugin.schema, netConfSchema);
    pluginSchemas.set(plugin.schema, s);
  }
  return s;
}

/**
 * The plugin's json.Unmarshal of the whole config into its NetConf (Go's key matching and null rules,
 * go-decode.ts), worded as the reference plugin wraps it, then the ajv schemas for what types alone do
 * not say (allowed values, required keys).
 *
 * DEL decodes leniently: a key of the wrong type, or one the schema refuses, is left out with a warning
 * instead of failing. The reference fails such a DEL, and fails it again on every retry, so the pod stays
 * Terminating forever; an ADD with that config failed before it changed anything, and whatever else
 * exists is found by name and container ID, which decode.
 */
async function decodeNetConf(
  doc: JsonNode,
  plugin: Plugin | undefined,
  teardown?: { log: Logger },
): Promise<NetConf> {
  let conf: NetConf;
  const skipped: string[] = [];
  const opts = teardown ? { onTypeError: (e: Error) => skipped.push(e.message) } : {};
  try {
    conf = goDecode(doc, confSchemaOf(plugin), "NetConf", opts) as NetConf;
  } catch (err) {
    throw plugin?.configContext ? wrapError(plugin.configContext, err) : err;
  }
  const drop = teardown ? (e: CniError) => skipped.push(e.msg) : undefined;
  for (const schema of plugin?.schema ? [netConfSchema, plugin.schema] : [netConfSchema]) {
    await validateSchema(schema, conf, drop);
  }
  if (skipped.length > 0) {
    teardown?.log.warn("tearing down with the config keys that decode; left out", {
      skipped: skipped.join("; "),
    });
  }
  if (conf.cniVersion === undefined) conf.cniVersion = "";
  return conf;
}

/** skel's config decode (codes 6 and 7) followed by the netconf schema (codes 7 and 2), for `plugin`. */
export async function decodeConfig(stdin: Buffer, plugin?: Plugin): Promise<NetConf> {
  return decodeNetConf(decodeEnvelope(stdin).doc, plugin);
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
    throw new CniError(ErrorCode.DecodingFailure, (err as Error).message, "", { cause: err });
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
  // A plugin that is already running in this call (delegation.ts) refuses before anything else.
  const delegation = args.delegation?.length ? args.delegation : [plugin.name];
  if (!mayEnter(args.command, delegation, callerOf(args))) return undefined;
  args = { ...args, delegation };
  // skel's order: environment, config name, version gates, then what the plugin parses.
  validateAttachment(args);
  const envelope = decodeEnvelope(args.stdin);
  // DecodeVersion: no cniVersion means 0.1.0.
  const version = envelope.version || "0.1.0";
  checkVerbAllowed(args.command, version);
  checkVersion(version);
  const conf = await decodeNetConf(envelope.doc, plugin, args.command === "DEL" ? { log } : undefined);
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

/** The reference prints results and errors with Go's MarshalIndent(v, "", "    "), VERSION compact. */
function render(doc: object, compact = false): string {
  return `${compact ? JSON.stringify(doc) : JSON.stringify(doc, null, 4)}\n`;
}

function versionForError(stdin: Buffer | undefined): string {
  try {
    const doc = scanJson(stdin?.toString("utf8") ?? "");
    const v = (goDecode(doc, versionSchema) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === "string" && isSupported(v)) return v;
  } catch {
    // fall through
  }
  return CURRENT_VERSION;
}

/** What a plugin process prints on stdout and the status it exits with. */
export interface CallOutcome {
  stdout: string;
  exitCode: 0 | 1;
}

/**
 * One call of `plugin` as the process a runtime executes: the caller's environment and stdin in, one
 * document out (a result, version info, or an error object with exit status 1); diagnostics to the
 * caller's stderr. The process entry point (pluginMain) and weftd serving a thin client both run it.
 * `readInput` is only called for a verb that reads stdin.
 */
export async function runCall(plugin: Plugin, caller: Caller, readInput: () => Buffer): Promise<CallOutcome> {
  const log = createLogger(plugin.name, caller.env, caller.stderr);
  let stdin: Buffer | undefined;
  try {
    const env = readEnvVars(caller.env);
    if (!env) {
      caller.stderr(aboutText(plugin.name));
      return { stdout: "", exitCode: 0 };
    }
    stdin = env.command === "VERSION" ? Buffer.alloc(0) : readInput();
    if (!isVerb(env.command)) {
      // skel decodes the config before it looks at the command.
      decodeEnvelope(stdin);
      throw unknownCommand(env.command);
    }
    const delegation = chainOnStart(env.delegation, plugin.name);
    const args: CmdArgs = { ...env, command: env.command, stdin, delegation };
    if (caller !== processCaller()) args.caller = caller;
    const out = await runVerb(plugin, args, log);
    return { stdout: out ? render(out, env.command === "VERSION") : "", exitCode: 0 };
  } catch (err) {
    const e = toCniError(err);
    log.error(e.msg, { code: e.code, details: e.details || undefined });
    return { stdout: render(e.toJSON(versionForError(stdin))), exitCode: 1 };
  }
}

/**
 * The process entry point of a plugin: env + stdin in, one document on stdout, exit status 0 or 1.
 * `stdin`: what was already read from fd 0 (the thin client read it before weftd declined the call).
 */
export async function pluginMain(plugin: Plugin, stdin?: Buffer): Promise<never> {
  const { stdout, exitCode } = await runCall(plugin, processCaller(), () =>
    stdin ? checkStdinSize(stdin) : readStdin(),
  );
  if (stdout) writeAll(1, stdout);
  process.exit(exitCode);
}
