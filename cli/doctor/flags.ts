/**
 * `weft doctor`'s flags. The store flags are weftd's (same names, same defaults), so an operator passes
 * the daemon's own flags to find the leases it sees.
 */

export const USAGE = `usage: weft doctor [--bin-dir DIR] [--conf-dir DIR] [--subnet-file FILE] [--healthz-url URL]
                   [--store file|etcd] [--store-dir DIR] [--etcd-endpoints URL[,URL...]] [--etcd-prefix PREFIX]
                   [--etcd-cafile FILE] [--etcd-certfile FILE] [--etcd-keyfile FILE]
                   [--etcd-username USER] [--etcd-password PASSWORD] [--json] [--fix]

Checks this node (the network namespace it runs in) for what breaks a flannel node: subnet.env and
weftd's lease, weftd's health, cni0's address and MTU, the CNI plugins and the conflist, the host
programs, ip_forward and the iptables rules, the routes (and VXLAN entries) to every other node, the
store, leaked IPs/configs/rules/veths, and kube-proxy's ipvs trap. One line per check; exit status 0
when nothing is wrong, 1 on a problem, 2 on bad usage.

  --bin-dir DIR        where the runtime finds the CNI plugins (default /opt/cni/bin)
  --conf-dir DIR       where the runtime finds the conflist (default /etc/cni/net.d); the first file by
                       name, as libcni orders them, gives the network name, bridge and state directories
  --subnet-file FILE   weftd's --subnet-file (default: the conflist's subnetFile, /run/flannel/subnet.env)
  --healthz-url URL    weftd's health endpoint, http://<--healthz-ip>:<--healthz-port>; without it,
                       doctor only looks for a weftd process in this network namespace
  --store, --store-dir, --etcd-*   the store weftd uses, with weftd's flags and defaults
  --json               the checks as JSON
  --fix                apply the safe repairs: release leaked reservations, saved configs, rules and
                       veths (never anything a live pod holds), turn ip_forward on
`;

export interface DoctorFlags {
  binDir: string;
  confDir: string;
  /** Given explicitly (otherwise the conflist's subnetFile). */
  subnetFile?: string;
  healthzUrl?: string;
  /** undefined: no store flag given (the default file store is used only if its directory exists). */
  store?: "file" | "etcd";
  storeDir: string;
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
  json: boolean;
  fix: boolean;
  help: boolean;
}

export const DEFAULT_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
/** weftd's defaults (daemon/flags.ts, flanneld's for etcd). */
export const DEFAULT_STORE_DIR = "/var/lib/weft/leases";
export const DEFAULT_ETCD_ENDPOINTS = ["http://127.0.0.1:4001", "http://127.0.0.1:2379"];
export const DEFAULT_ETCD_PREFIX = "/coreos.com/network";

const VALUED = [
  "bin-dir",
  "conf-dir",
  "subnet-file",
  "healthz-url",
  "store",
  "store-dir",
  "etcd-endpoints",
  "etcd-prefix",
  "etcd-cafile",
  "etcd-certfile",
  "etcd-keyfile",
  "etcd-username",
  "etcd-password",
] as const;
const BOOLEAN = ["json", "fix", "help"] as const;
type Valued = (typeof VALUED)[number];

/** The flags, or the usage error (exit status 2). `--flag value` and `--flag=value` are both taken. */
export function parseDoctorFlags(argv: string[]): DoctorFlags | { error: string } {
  const v: Partial<Record<Valued, string>> = {};
  const b = { json: false, fix: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      b.help = true;
      continue;
    }
    const m = /^--([\w-]+)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) return { error: `unexpected argument ${JSON.stringify(arg)}` };
    const name = m[1]!;
    if ((BOOLEAN as readonly string[]).includes(name)) {
      if (m[2] !== undefined) return { error: `--${name} takes no value` };
      b[name as (typeof BOOLEAN)[number]] = true;
      continue;
    }
    if (!(VALUED as readonly string[]).includes(name)) return { error: `unknown flag --${name}` };
    const value = m[2] ?? argv[++i];
    if (value === undefined || (m[2] === undefined && value.startsWith("--")))
      return { error: `--${name} needs a value` };
    if (value === "") return { error: `--${name} needs a value` };
    v[name as Valued] = value;
  }
  if (v.store !== undefined && v.store !== "file" && v.store !== "etcd")
    return { error: `invalid value ${JSON.stringify(v.store)} for --store: allowed values: file, etcd` };
  if (v["healthz-url"] !== undefined) {
    let url: URL;
    try {
      url = new URL(v["healthz-url"]);
    } catch {
      return {
        error: `invalid --healthz-url ${JSON.stringify(v["healthz-url"])}: expected http://HOST:PORT`,
      };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      return {
        error: `invalid --healthz-url ${JSON.stringify(v["healthz-url"])}: expected http://HOST:PORT`,
      };
  }
  const endpoints = v["etcd-endpoints"]?.split(",").filter(Boolean);
  // weftd's rule: etcd when endpoints are given, else the file store.
  const store =
    (v.store as DoctorFlags["store"]) ?? (endpoints ? "etcd" : v["store-dir"] ? "file" : undefined);
  const out: DoctorFlags = {
    binDir: v["bin-dir"] ?? DEFAULT_BIN_DIR,
    confDir: v["conf-dir"] ?? DEFAULT_CONF_DIR,
    storeDir: v["store-dir"] ?? DEFAULT_STORE_DIR,
    etcdEndpoints: endpoints ?? DEFAULT_ETCD_ENDPOINTS,
    etcdPrefix: v["etcd-prefix"] ?? DEFAULT_ETCD_PREFIX,
    ...b,
  };
  if (store) out.store = store;
  if (v["subnet-file"]) out.subnetFile = v["subnet-file"];
  if (v["healthz-url"]) out.healthzUrl = v["healthz-url"].replace(/\/+$/, "");
  if (v["etcd-cafile"]) out.etcdCafile = v["etcd-cafile"];
  if (v["etcd-certfile"]) out.etcdCertfile = v["etcd-certfile"];
  if (v["etcd-keyfile"]) out.etcdKeyfile = v["etcd-keyfile"];
  if (v["etcd-username"]) out.etcdUsername = v["etcd-username"];
  if (v["etcd-password"]) out.etcdPassword = v["etcd-password"];
  return out;
}
