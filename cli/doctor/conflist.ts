import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { DEFAULT_DATA_DIR as FLANNEL_DATA_DIR } from "../../plugins/flannel/saved-config.js";
import { isSupported, SUPPORTED_VERSIONS } from "../../shared/cni/versions.js";
import { DEFAULT_SUBNET_FILE } from "../../shared/flannel/subnet-env.js";
import { DEFAULT_DATA_DIR as IPAM_DATA_DIR } from "../../shared/ipam/config.js";

/**
 * The node's CNI set-up as the runtime sees it: the network config libcni picks in the conf dir, and the
 * places the plugins keep their state, read from that config with the plugins' own defaults (so doctor
 * looks where the plugins write, also on a simulated node with private directories).
 */
export interface CniSetup {
  /** The file the runtime uses. */
  file: string;
  name: string;
  cniVersion: string;
  /** The plugins of the list, in order. */
  plugins: Array<Record<string, unknown> & { type: string }>;
  /** The flannel plugin's config, if the list has one. */
  flannel?: Record<string, unknown>;
  /** flannel's subnetFile (default /run/flannel/subnet.env). */
  subnetFile: string;
  /** flannel's dataDir: the saved delegate configs (default /var/lib/cni/flannel). */
  flannelDataDir: string;
  /** host-local's dataDir (flannel's ipam.dataDir, default /var/lib/cni/networks); reservations in <dir>/<name>. */
  ipamDataDir: string;
  /** The delegate's type (default bridge) and its bridge's name (default cni0). */
  delegateType: string;
  bridge: string;
  /** The IPAM plugin the delegate calls (default host-local). */
  ipamType: string;
  /** Every executable the list needs in the bin dir: the list's types, then flannel's delegate and IPAM. */
  executables: string[];
}

/** libcni's ConfFiles extensions, as containerd and CRI-O pass them. */
const EXTENSIONS = [".conf", ".conflist", ".json"];

/** The network configs in libcni's order: by name (Go's sort.Strings, byte order); the runtime takes the first. */
export function confFiles(names: string[]): string[] {
  return names
    .filter((n) => EXTENSIONS.includes(extname(n)))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/**
 * A config file's text as a CniSetup, or why the runtime cannot use it. A `.conf`/`.json` file holding a
 * single plugin config is a list of that one plugin (libcni's ConfListFromConf).
 */
export function parseConf(file: string, text: string): CniSetup | { error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { error: `${file} is not valid JSON: ${(err as Error).message}` };
  }
  if (!isObject(doc)) return { error: `${file} does not hold a JSON object` };
  const list = extname(file) === ".conflist" || Array.isArray(doc.plugins) ? doc : undefined;
  const plugins = list ? list.plugins : [doc];
  if (!Array.isArray(plugins) || plugins.length === 0)
    return { error: `${file} has no "plugins" list: the runtime finds no network in it` };
  const name = str(doc.name);
  if (!name) return { error: `${file} has no "name"` };
  const cniVersion = str(doc.cniVersion);
  if (!cniVersion)
    return { error: `${file} has no "cniVersion": the runtime refuses the list (or DEL breaks in some)` };
  if (!isSupported(cniVersion))
    return {
      error: `${file} has cniVersion ${JSON.stringify(cniVersion)}, which no plugin here speaks (supported: ${SUPPORTED_VERSIONS.join(", ")})`,
    };
  for (const [i, p] of plugins.entries()) {
    if (!isObject(p) || !str(p.type)) return { error: `${file}: plugins[${i}] has no "type"` };
  }
  const typed = plugins as CniSetup["plugins"];
  const flannel = typed.find((p) => p.type === "flannel");
  const delegate = isObject(flannel?.delegate) ? flannel.delegate : {};
  const ipam = isObject(flannel?.ipam) ? flannel.ipam : {};
  const delegateType = str(delegate.type) ?? "bridge";
  const ipamType = str(ipam.type) ?? "host-local";
  const executables = [...typed.map((p) => p.type), ...(flannel ? [delegateType, ipamType] : [])];
  const setup: CniSetup = {
    file,
    name,
    cniVersion,
    plugins: typed,
    subnetFile: str(flannel?.subnetFile) ?? DEFAULT_SUBNET_FILE,
    flannelDataDir: str(flannel?.dataDir) ?? FLANNEL_DATA_DIR,
    ipamDataDir: str(ipam.dataDir) ?? IPAM_DATA_DIR,
    delegateType,
    bridge: str(delegate.bridge) ?? "cni0",
    ipamType,
    executables: [...new Set(executables)],
  };
  if (flannel) setup.flannel = flannel;
  return setup;
}

export interface ConfDirView {
  /** The config the runtime uses (the first by name), or why it cannot use it. */
  runtime: CniSetup | { error: string };
  /**
   * The first config by name that holds the flannel plugin: where the plugins keep their state, even
   * when a broken or foreign file sorts before it.
   */
  flannel?: CniSetup;
}

/** The conf dir's network configs as the runtime picks them. */
export function loadConfDir(confDir: string): ConfDirView {
  let names: string[];
  try {
    names = confFiles(readdirSync(confDir));
  } catch (err) {
    return { runtime: { error: `cannot read ${confDir}: ${(err as Error).message}` } };
  }
  if (names.length === 0)
    return { runtime: { error: `${confDir} holds no network config (*.conf, *.conflist, *.json)` } };
  const parsed = names.map((name) => {
    const file = join(confDir, name);
    try {
      return parseConf(file, readFileSync(file, "utf8"));
    } catch (err) {
      return { error: `cannot read ${file}: ${(err as Error).message}` };
    }
  });
  const flannel = parsed.find((p): p is CniSetup => !("error" in p) && p.flannel !== undefined);
  return flannel ? { runtime: parsed[0]!, flannel } : { runtime: parsed[0]! };
}
