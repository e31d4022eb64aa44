import { isIPv4, isIPv6 } from "node:net";
import { DEFAULT_CNI_SOCKET } from "../shared/cni/socket-protocol.js";

/**
 * weftd's command line: flanneld's flag names, defaults and meanings (flannel main.go), read the way Go's
 * `flag` package reads them, then `FLANNELD_<FLAG>` environment variables for every flag the command line
 * did not set (coreos/pkg flagutil.SetFlagsFromEnv: upper case, dashes and dots as underscores, empty
 * values ignored), plus weft's own flags for its embedded file store.
 *
 * Go's syntax: `-flag` and `--flag` alike; `--flag=value` or `--flag value` (a value may start with a
 * dash); booleans only as `--flag` or `--flag=false` (Go never takes the next word for a boolean); the
 * first word that is not a flag, or `--`, ends the flags. Unlike flanneld, a stray word is an error:
 * `--ip-masq false` would otherwise leave masquerading on and ignore "false".
 */

export type StoreKind = "file" | "etcd";

export interface Flags {
  /** `--iface`, in order; empty = the interface of the default route. */
  iface: string[];
  publicIp: string;
  publicIpv6: string;
  subnetFile: string;
  ipMasq: boolean;
  /** Inverse of `--ip-masq-fully-random-disable`. */
  ipMasqRandomFully: boolean;
  store: StoreKind;
  storeDir: string;
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdCafile: string;
  etcdCertfile: string;
  etcdKeyfile: string;
  etcdUsername: string;
  etcdPassword: string;
  netConfigPath: string;
  /** Whether `--net-config-path` (or its alias or env) was given: it then wins over a store's config. */
  netConfigPathGiven: boolean;
  /** `--subnet-lease-renew-margin`, in ms. */
  subnetLeaseRenewMarginMs: number;
  /** `--subnet-lease-ttl`, in ms (flanneld: a fixed 24 h). */
  subnetLeaseTtlMs: number;
  /** `--iptables-resync`, in seconds. */
  iptablesResync: number;
  iptablesForwardRules: boolean;
  healthzIp: string;
  healthzPort: number;
  /** `--cni-socket`: where the plugins' calls are served ("" = not served). */
  cniSocket: string;
  /** `--cni-only`: serve the plugins' calls only (a node whose subnet and routes flanneld manages). */
  cniOnly: boolean;
}

export type ParsedArgs =
  | { action: "run"; flags: Flags; warnings: string[] }
  | { action: "help" }
  | { action: "version" };

/** A bad flag or value: the message names the flag (or variable) and the allowed values. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

type Kind = "string" | "bool" | "int" | "list";

interface Spec {
  name: string;
  aliases?: string[];
  kind: Kind;
  /** Default as text, shown in --help (and parsed like a given value). */
  def: string;
  /** Placeholder for --help. */
  arg?: string;
  help: string;
  /** The allowed values, for --help and error messages. */
  allowed?: string;
  /** Returns why a (parsed) value is refused, if it is. */
  check?: (v: never) => string | undefined;
  /** A flanneld flag weftd does not implement: any value but the default is refused with this reason. */
  unsupported?: string;
  /** Accepted for flanneld compatibility and ignored. */
  ignored?: string;
}

// \u00b5 is "µ" (Go accepts "µs"): written as an escape so the bundle stays ASCII (cli/rest-loader.ts).
const DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|\u00b5s|ms|s|m|h))+$/;

/** Go's time.ParseDuration for the units a lease needs, in ms; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g))
    ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

function formatDuration(ms: number): string {
  if (ms % 3600e3 === 0) return `${ms / 3600e3}h`;
  if (ms % 60e3 === 0) return `${ms / 60e3}m`;
  return `${ms / 1e3}s`;
}

const SPECS: Spec[] = [
  {
    name: "iface",
    kind: "list",
    def: "",
    arg: "IFACE",
    help: "interface to use (IP or name) for inter-host communication; repeat it to try each in order (the first match wins); default: the interface of the default route",
  },
  {
    name: "public-ip",
    kind: "string",
    def: "",
    arg: "IP",
    help: "IPv4 address other nodes reach this node on (default: the interface's address)",
    allowed: "an IPv4 address",
    check: (v: string) => (v === "" || isIPv4(v) ? undefined : "not an IPv4 address"),
  },
  {
    name: "public-ipv6",
    kind: "string",
    def: "",
    arg: "IP",
    help: "IPv6 address other nodes reach this node on (default: the interface's address)",
    allowed: "an IPv6 address",
    check: (v: string) => (v === "" || isIPv6(v) ? undefined : "not an IPv6 address"),
  },
  {
    name: "subnet-file",
    kind: "string",
    def: "/run/flannel/subnet.env",
    arg: "PATH",
    help: "file the node's subnet, MTU and ip-masq setting are written to, for the flannel CNI plugin",
    allowed: "a file path",
    check: (v: string) => (v === "" ? "empty" : undefined),
  },
  {
    name: "ip-masq",
    kind: "bool",
    def: "false",
    help: "masquerade traffic from pods to destinations outside the pod network (flanneld's FLANNEL-POSTRTG chain)",
  },
  {
    name: "ip-masq-fully-random-disable",
    kind: "bool",
    def: "false",
    help: "do not use --random-fully in the MASQUERADE rules",
  },
  {
    name: "store",
    kind: "string",
    def: "",
    arg: "KIND",
    help: "where leases live: file (a directory shared by the daemons of one machine, see --store-dir) or etcd (flanneld's etcd layout); default: etcd when --etcd-endpoints is given, else file",
    allowed: "file, etcd",
    check: (v: string) => (v === "" || v === "file" || v === "etcd" ? undefined : "unknown store"),
  },
  {
    name: "store-dir",
    kind: "string",
    def: "/var/lib/weft/leases",
    arg: "DIR",
    help: "directory of the file store's leases (one file per subnet); every daemon sharing it shares the network",
    allowed: "a directory path",
    check: (v: string) => (v === "" ? "empty" : undefined),
  },
  {
    name: "etcd-endpoints",
    kind: "string",
    def: "http://127.0.0.1:4001,http://127.0.0.1:2379",
    arg: "URLS",
    help: "a comma-delimited list of etcd endpoints",
    allowed: "a comma list of http://HOST:PORT or https://HOST:PORT",
    check: (v: string) => {
      for (const e of v.split(",")) {
        let u: URL;
        try {
          u = new URL(e);
        } catch {
          return `${JSON.stringify(e)} is not a URL`;
        }
        if (u.protocol !== "http:" && u.protocol !== "https:")
          return `${JSON.stringify(e)} is not http or https`;
      }
      return undefined;
    },
  },
  {
    name: "etcd-prefix",
    kind: "string",
    def: "/coreos.com/network",
    arg: "PREFIX",
    help: "etcd prefix: the network config is <prefix>/config, leases are <prefix>/subnets/<subnet>",
    allowed: "a key prefix starting with /",
    check: (v: string) => (v.startsWith("/") ? undefined : "does not start with /"),
  },
  {
    name: "etcd-keyfile",
    kind: "string",
    def: "",
    arg: "PATH",
    help: "TLS client key file for etcd (with --etcd-certfile)",
  },
  {
    name: "etcd-certfile",
    kind: "string",
    def: "",
    arg: "PATH",
    help: "TLS client certificate file for etcd (with --etcd-keyfile)",
  },
  {
    name: "etcd-cafile",
    kind: "string",
    def: "",
    arg: "PATH",
    help: "TLS certificate authority file that signed etcd's server certificate",
  },
  { name: "etcd-username", kind: "string", def: "", arg: "NAME", help: "username for etcd's basic auth" },
  { name: "etcd-password", kind: "string", def: "", arg: "PASSWORD", help: "password for etcd's basic auth" },
  {
    name: "net-config-path",
    aliases: ["net-conf"],
    kind: "string",
    def: "/etc/kube-flannel/net-conf.json",
    arg: "PATH",
    help: "the network configuration file (flannel's net-conf.json); given explicitly, it wins over a store's <prefix>/config",
    allowed: "a file path",
    check: (v: string) => (v === "" ? "empty" : undefined),
  },
  {
    name: "subnet-lease-renew-margin",
    kind: "string",
    def: "60",
    arg: "MINUTES",
    help: "renew the lease this long before it expires: minutes (flanneld's form) or a Go duration such as 90s",
    allowed: "1..1439 (minutes), or a duration shorter than --subnet-lease-ttl",
    check: (v: string) => {
      if (/^\d+$/.test(v)) {
        const n = Number(v);
        return n >= 1 && n <= 1439 ? undefined : "out of acceptable range";
      }
      return parseDuration(v) ? undefined : "neither minutes nor a duration";
    },
  },
  {
    name: "subnet-lease-ttl",
    kind: "string",
    def: "24h",
    arg: "DURATION",
    help: "how long a lease lasts without renewal (flanneld: a fixed 24h); a Go duration such as 24h or 30m",
    allowed: "a duration of at least 10s (e.g. 24h, 30m)",
    check: (v: string) => {
      const ms = parseDuration(v);
      return ms !== undefined && ms >= 10e3 ? undefined : "not a duration of at least 10s";
    },
  },
  {
    name: "iptables-resync",
    kind: "int",
    def: "5",
    arg: "SECONDS",
    help: "resync period of the iptables rules, in seconds",
    allowed: "1..86400 (seconds)",
    check: (v: number) => (v >= 1 && v <= 86400 ? undefined : "out of range"),
  },
  {
    name: "iptables-forward-rules",
    kind: "bool",
    def: "true",
    help: "accept the pod network's traffic in the FORWARD chain (flanneld's FLANNEL-FWD chain)",
  },
  {
    name: "healthz-ip",
    kind: "string",
    def: "0.0.0.0",
    arg: "IP",
    help: "address the /healthz, /readyz and /metrics server listens on",
    allowed: "an IPv4 or IPv6 address",
    check: (v: string) => (isIPv4(v) || isIPv6(v) ? undefined : "not an IP address"),
  },
  {
    name: "healthz-port",
    kind: "int",
    def: "0",
    arg: "PORT",
    help: "port of the /healthz, /readyz and /metrics server (0 = no server)",
    allowed: "0..65535",
    check: (v: number) => (v >= 0 && v <= 65535 ? undefined : "out of range"),
  },
  {
    name: "cni-socket",
    kind: "string",
    def: DEFAULT_CNI_SOCKET,
    arg: "PATH",
    help: 'Unix socket the CNI plugins send their calls to, served in this process ("" = do not serve)',
    allowed: 'an absolute path, or "" to not serve',
    check: (v: string) => (v === "" || v.startsWith("/") ? undefined : "not an absolute path"),
  },
  {
    name: "cni-only",
    kind: "bool",
    def: "false",
    help: "only serve the CNI plugins' calls on --cni-socket: no lease, routes or rules (flanneld runs the node)",
  },
  // flanneld's flags weftd does not implement: refused unless left at their defaults.
  {
    name: "kube-subnet-mgr",
    kind: "bool",
    def: "false",
    help: "",
    unsupported: "weftd has no Kubernetes subnet manager yet; use --store=file or --store=etcd",
  },
  ...["kube-api-url", "kubeconfig-file"].map(
    (name): Spec => ({
      name,
      kind: "string",
      def: "",
      help: "",
      unsupported: "weftd has no Kubernetes subnet manager yet",
    }),
  ),
  {
    name: "kube-annotation-prefix",
    kind: "string",
    def: "flannel.alpha.coreos.com",
    help: "",
    unsupported: "weftd has no Kubernetes subnet manager yet",
  },
  {
    name: "iface-regex",
    kind: "list",
    def: "",
    help: "",
    unsupported: "name the interface (or its address) with --iface",
  },
  {
    name: "iface-can-reach",
    kind: "string",
    def: "",
    help: "",
    unsupported: "name the interface (or its address) with --iface",
  },
  {
    name: "ip-blackhole-route",
    kind: "bool",
    def: "false",
    help: "",
    unsupported: "the blackhole route for the node's subnet is not implemented",
  },
  {
    name: "set-node-network-unavailable",
    kind: "bool",
    def: "true",
    help: "",
    ignored: "Kubernetes-only",
  },
  { name: "v", kind: "int", def: "0", help: "", ignored: "klog verbosity; weftd logs by WEFT_LOG_LEVEL" },
];

const BOOLS: Record<string, boolean> = {
  1: true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  0: false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

const byName = new Map<string, Spec>();
for (const s of SPECS) for (const n of [s.name, ...(s.aliases ?? [])]) byName.set(n, s);

const envName = (name: string) => `FLANNELD_${name.replace(/[-.]/g, "_").toUpperCase()}`;

/** The value of one flag, parsed and checked; `where` names the flag or the variable in errors. */
function parseValue(spec: Spec, text: string, where: string): string | boolean | number {
  const fail = (why: string, allowed: string | undefined) =>
    new FlagError(`invalid value ${JSON.stringify(text)} for ${where}: ${why}; allowed values: ${allowed}`);
  let value: string | boolean | number;
  switch (spec.kind) {
    case "bool":
      if (!(text in BOOLS)) throw fail("not a boolean", "true, false (also 1, 0, t, f)");
      value = BOOLS[text]!;
      break;
    case "int":
      if (!/^[+-]?\d+$/.test(text)) throw fail("not an integer", spec.allowed ?? "an integer");
      value = Number(text);
      break;
    default:
      value = text;
  }
  const why = spec.check?.(value as never);
  if (why) throw fail(why, spec.allowed);
  return value;
}

/** Reads argv (without the program name) and the environment into weftd's settings. */
export function parseArgs(argv: string[], env: Record<string, string | undefined> = process.env): ParsedArgs {
  const set = new Map<Spec, Array<string | boolean | number>>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      if (i + 1 < argv.length) throw unexpected(argv[i + 1]!);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") throw unexpected(arg);
    let name = arg.slice(arg.startsWith("--") ? 2 : 1);
    if (name === "" || name.startsWith("-") || name.startsWith("="))
      throw new FlagError(`bad flag syntax: ${arg}`);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === "help" || name === "h") return { action: "help" };
    if (name === "version") {
      if (value !== undefined && !(value in BOOLS))
        throw new FlagError(
          `invalid value ${JSON.stringify(value)} for flag --version: not a boolean; allowed values: true, false`,
        );
      if (value !== undefined && !BOOLS[value]) continue;
      return { action: "version" };
    }
    const spec = byName.get(name);
    if (!spec)
      throw new FlagError(`flag provided but not defined: --${name} (weftd --help lists every flag)`);
    if (value === undefined) {
      if (spec.kind === "bool") value = "true";
      else if (i + 1 < argv.length) value = argv[++i]!;
      else
        throw new FlagError(`flag needs an argument: --${name}${spec.allowed ? ` (${spec.allowed})` : ""}`);
    }
    const parsed = parseValue(spec, value, `flag --${name}`);
    set.set(spec, spec.kind === "list" ? [...(set.get(spec) ?? []), parsed] : [parsed]);
  }
  const fromEnv = new Set<Spec>();
  for (const spec of SPECS) {
    if (set.has(spec)) continue;
    const v = env[envName(spec.name)];
    if (v === undefined || v === "") continue;
    // flagutil calls Set once with the whole value: a list variable is one entry, as in flanneld.
    set.set(spec, [parseValue(spec, v, `${envName(spec.name)} (--${spec.name})`)]);
    fromEnv.add(spec);
  }

  const warnings: string[] = [];
  for (const [spec, values] of set) {
    const def = spec.kind === "list" ? undefined : parseValue(spec, spec.def, "the default");
    const isDefault = values.every((v) => v === def);
    const where = fromEnv.has(spec) ? `${envName(spec.name)} (--${spec.name})` : `--${spec.name}`;
    if (spec.unsupported && !isDefault)
      throw new FlagError(`${where} is a flanneld flag weftd does not support: ${spec.unsupported}`);
    if (spec.ignored && !isDefault) warnings.push(`${where} ignored: ${spec.ignored}`);
  }

  const get = <T extends string | boolean | number>(name: string): T => {
    const spec = byName.get(name)!;
    return (set.get(spec)?.at(-1) ?? parseValue(spec, spec.def, "the default")) as T;
  };
  const given = (name: string) => set.has(byName.get(name)!);

  const marginText = get<string>("subnet-lease-renew-margin");
  const marginMs = /^\d+$/.test(marginText) ? Number(marginText) * 60e3 : parseDuration(marginText)!;
  const ttlMs = parseDuration(get<string>("subnet-lease-ttl"))!;
  if (marginMs >= ttlMs)
    throw new FlagError(
      `invalid value ${JSON.stringify(marginText)} for flag --subnet-lease-renew-margin: ${formatDuration(marginMs)} is not shorter than --subnet-lease-ttl (${formatDuration(ttlMs)}); allowed values: a margin shorter than the lease`,
    );

  const storeText = get<string>("store");
  const store: StoreKind =
    storeText === "" ? (given("etcd-endpoints") ? "etcd" : "file") : (storeText as StoreKind);
  if (store === "file") {
    const etcdFlags = [...set.keys()].filter((s) => s.name.startsWith("etcd-")).map((s) => `--${s.name}`);
    if (etcdFlags.length > 0)
      warnings.push(`${etcdFlags.join(", ")} ignored: the store is file (--store=file)`);
  } else if (given("store-dir")) {
    warnings.push("--store-dir ignored: the store is etcd");
  }

  const flags: Flags = {
    iface: (set.get(byName.get("iface")!) as string[] | undefined) ?? [],
    publicIp: get("public-ip"),
    publicIpv6: get("public-ipv6"),
    subnetFile: get("subnet-file"),
    ipMasq: get("ip-masq"),
    ipMasqRandomFully: !get<boolean>("ip-masq-fully-random-disable"),
    store,
    storeDir: get("store-dir"),
    etcdEndpoints: get<string>("etcd-endpoints").split(","),
    etcdPrefix: get("etcd-prefix"),
    etcdCafile: get("etcd-cafile"),
    etcdCertfile: get("etcd-certfile"),
    etcdKeyfile: get("etcd-keyfile"),
    etcdUsername: get("etcd-username"),
    etcdPassword: get("etcd-password"),
    netConfigPath: get("net-config-path"),
    netConfigPathGiven: given("net-config-path"),
    subnetLeaseRenewMarginMs: marginMs,
    subnetLeaseTtlMs: ttlMs,
    iptablesResync: get("iptables-resync"),
    iptablesForwardRules: get("iptables-forward-rules"),
    healthzIp: get("healthz-ip"),
    healthzPort: get("healthz-port"),
    cniSocket: get("cni-socket"),
    cniOnly: get("cni-only"),
  };
  if (flags.cniOnly && flags.cniSocket === "")
    throw new FlagError("--cni-only needs --cni-socket: allowed values: an absolute path");
  return { action: "run", flags, warnings };
}

function unexpected(word: string): FlagError {
  return new FlagError(
    `unexpected argument ${JSON.stringify(word)}: weftd takes flags only (a boolean takes its value as --flag=false, never as a separate word)`,
  );
}

/** The flags as one log line, as flanneld logs "CLI flags config", with the etcd password hidden. */
export function describeFlags(f: Flags): string {
  const shown = { ...f, etcdPassword: f.etcdPassword ? "<hidden>" : "" };
  return JSON.stringify(shown);
}

/** `weftd --help`. */
export function usage(): string {
  const lines = [
    "Usage: weftd [OPTION]...",
    "",
    "weftd leases this node's pod subnet from a store shared by the nodes, writes it to subnet.env for the",
    "flannel CNI plugin and routes to every other node's subnet (vxlan or host-gw): a drop-in for flanneld,",
    "with its flags, its net-conf.json and its etcd layout.",
    "",
    "Every flag can also be set as FLANNELD_<FLAG> in the environment (upper case, dashes as underscores,",
    "e.g. FLANNELD_IP_MASQ=true); the command line wins. Booleans take --flag or --flag=false.",
    "",
  ];
  for (const s of SPECS) {
    if (s.unsupported || s.ignored) continue;
    const names = [s.name, ...(s.aliases ?? [])].map((n) => `--${n}${s.kind === "bool" ? "" : `=${s.arg}`}`);
    const def = s.kind === "list" || s.def === "" ? "" : ` (default ${s.def})`;
    lines.push(`  ${names.join(", ")}`);
    lines.push(...wrap(`${s.help}${def}${s.allowed ? `; allowed: ${s.allowed}` : ""}`, 100, "      "));
  }
  lines.push(
    "  --version",
    "      print the version and exit",
    "",
    "Accepted for flanneld compatibility and ignored: --set-node-network-unavailable, --v.",
    "Not supported (refused unless left at their defaults): --kube-subnet-mgr, --kube-api-url,",
    "--kubeconfig-file, --kube-annotation-prefix, --iface-regex, --iface-can-reach, --ip-blackhole-route.",
    "",
  );
  return `${lines.join("\n")}\n`;
}

function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      out.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") out.push(indent + line);
  return out;
}
