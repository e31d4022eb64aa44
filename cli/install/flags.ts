import { resolve } from "node:path";

/**
 * The command lines of `weft install` and `weft uninstall`. Syntax: `--flag value` or `--flag=value`;
 * a switch is `--flag` (or `--flag=true`/`--flag=false`, so a generated command line can spell it out).
 * Every mistake is a UsageError naming the flag and what is allowed (exit status 2).
 */

export const DEFAULT_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
export const BACKENDS = ["vxlan", "host-gw"] as const;
export type Backend = (typeof BACKENDS)[number];

export interface InstallFlags {
  binDir: string;
  confDir: string;
  /** `--conflist FILE`: install this list instead of the embedded one. */
  conflist?: string;
  /** `--backend`: validated only; the CNI side is the same for both (conflists/README.md). */
  backend: Backend;
  dualStack: boolean;
  skipConf: boolean;
  dryRun: boolean;
  force: boolean;
  /** `--from FILE`: the executable to install; default the running one. */
  from?: string;
}

export interface UninstallFlags {
  binDir: string;
  confDir: string;
  restore: boolean;
  purge: boolean;
  dryRun: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Spec = Record<string, "value" | "switch">;

const INSTALL_SPEC: Spec = {
  "bin-dir": "value",
  "conf-dir": "value",
  conflist: "value",
  backend: "value",
  "dual-stack": "switch",
  "skip-conf": "switch",
  "dry-run": "switch",
  force: "switch",
  from: "value",
};

const UNINSTALL_SPEC: Spec = {
  "bin-dir": "value",
  "conf-dir": "value",
  restore: "switch",
  purge: "switch",
  "dry-run": "switch",
};

const allowed = (spec: Spec) =>
  Object.entries(spec)
    .map(([k, kind]) => (kind === "value" ? `--${k} VALUE` : `--${k}`))
    .join(", ");

/** `--help`/`-h` anywhere: the caller prints its usage. */
export function wantsHelp(argv: string[]): boolean {
  return argv.some((a) => a === "--help" || a === "-h");
}

/** The flags given, as strings (values) and booleans (switches); later repeats win, as in Go's flag. */
function read(argv: string[], spec: Spec): Map<string, string | boolean> {
  const out = new Map<string, string | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z][\w-]*)(?:=(.*))?$/s.exec(arg);
    if (!m)
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}; allowed flags: ${allowed(spec)}`);
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name}; allowed flags: ${allowed(spec)}`);
    if (kind === "switch") {
      if (inline === undefined || inline === "true") out.set(name, true);
      else if (inline === "false") out.set(name, false);
      else
        throw new UsageError(`invalid value ${JSON.stringify(inline)} for --${name}: allowed: true, false`);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (value === "") throw new UsageError(`--${name} needs a non-empty value`);
    out.set(name, value);
  }
  return out;
}

const str = (m: Map<string, string | boolean>, k: string) => m.get(k) as string | undefined;
const on = (m: Map<string, string | boolean>, k: string) => m.get(k) === true;

export function parseInstallFlags(argv: string[]): InstallFlags {
  const m = read(argv, INSTALL_SPEC);
  const backend = str(m, "backend") ?? "vxlan";
  if (!(BACKENDS as readonly string[]).includes(backend)) {
    throw new UsageError(
      `invalid value ${JSON.stringify(backend)} for --backend: allowed: ${BACKENDS.join(", ")} ` +
        "(both use the same conflist; the backend is weftd's net-conf.json)",
    );
  }
  const conflist = str(m, "conflist");
  // --conflist installs a list as it is, --skip-conf none, --dual-stack picks the built-in one: two of
  // them at once would leave one silently ignored. --backend only validates, so it goes with anything
  // but --conflist (whose list is not the built-in one the backend note is about).
  const given = (k: string) => (INSTALL_SPEC[k] === "switch" ? on(m, k) : m.has(k));
  for (const [a, b] of [
    ["conflist", "backend"],
    ["conflist", "dual-stack"],
    ["conflist", "skip-conf"],
    ["skip-conf", "dual-stack"],
  ] as const) {
    if (given(a) && given(b)) {
      throw new UsageError(
        `--${a} and --${b} cannot be combined: --conflist FILE installs that list as it is, ` +
          "--skip-conf installs none, --dual-stack chooses the built-in dual-stack list, " +
          "--backend only checks the backend name (both backends use the same list)",
      );
    }
  }
  const from = str(m, "from");
  return {
    binDir: resolve(str(m, "bin-dir") ?? DEFAULT_BIN_DIR),
    confDir: resolve(str(m, "conf-dir") ?? DEFAULT_CONF_DIR),
    ...(conflist !== undefined ? { conflist: resolve(conflist) } : {}),
    backend: backend as Backend,
    dualStack: on(m, "dual-stack"),
    skipConf: on(m, "skip-conf"),
    dryRun: on(m, "dry-run"),
    force: on(m, "force"),
    ...(from !== undefined ? { from: resolve(from) } : {}),
  };
}

export function parseUninstallFlags(argv: string[]): UninstallFlags {
  const m = read(argv, UNINSTALL_SPEC);
  return {
    binDir: resolve(str(m, "bin-dir") ?? DEFAULT_BIN_DIR),
    confDir: resolve(str(m, "conf-dir") ?? DEFAULT_CONF_DIR),
    restore: on(m, "restore"),
    purge: on(m, "purge"),
    dryRun: on(m, "dry-run"),
  };
}
