import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { DEFAULT_DATA_DIR as FLANNEL_DATA_DIR } from "../../plugins/flannel/saved-config.js";
import { DEFAULT_DATA_DIR as IPAM_DATA_DIR } from "../../shared/ipam/config.js";

/**
 * Where a flannel network keeps its state on the node, read from its conflist with the plugins' own
 * defaults: the network name (host-local's directory, the masquerade and portmap chains' comments), the
 * bridge (`delegate.bridge`, default `cni0`), flannel's `dataDir` (saved delegate configs) and
 * host-local's `<ipam.dataDir>/<network>` (reservations). A node simulated with private directories
 * (tests, the demo) names them in its conflist, so everything that reads state from here stays in them.
 */
export interface NetworkState {
  /** The conflist file it was read from, or undefined for the defaults. */
  file?: string;
  network: string;
  bridge?: string;
  flannelDataDir?: string;
  ipamDir?: string;
}

export const DEFAULT_NETWORK = "cbr0";
const DEFAULT_BRIDGE = "cni0";
/** The extensions libcni loads from a conf dir (ConfFiles with .conf, .conflist, .json). */
const CONF_EXTENSIONS = new Set([".conf", ".conflist", ".json"]);

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** The state of one network config document (a list, or a single config as libcni also takes). */
export function networkStateOf(doc: unknown, file?: string): NetworkState | undefined {
  const d = obj(doc);
  if (!d) return undefined;
  const network = str(d.name);
  const plugins = Array.isArray(d.plugins) ? d.plugins.map(obj) : [d];
  const flannel = plugins.find((p) => p?.type === "flannel");
  if (!network || !flannel) return undefined;
  const delegate = obj(flannel.delegate) ?? {};
  const delegateType = str(delegate.type) ?? "bridge";
  const ipamDataDir = str(obj(flannel.ipam)?.dataDir) ?? IPAM_DATA_DIR;
  return {
    ...(file ? { file } : {}),
    network,
    ...(delegateType === "bridge" ? { bridge: str(delegate.bridge) ?? DEFAULT_BRIDGE } : {}),
    flannelDataDir: str(flannel.dataDir) ?? FLANNEL_DATA_DIR,
    ...(str(obj(flannel.ipam)?.type) && obj(flannel.ipam)?.type !== "host-local"
      ? {}
      : { ipamDir: join(ipamDataDir, network) }),
  };
}

/**
 * The flannel networks of the conflists in `confDir` (files libcni would load that name a `flannel`
 * plugin; other networks are not weft's); the plugins' defaults for `cbr0` when there is none.
 */
export function flannelNetworks(confDir: string): NetworkState[] {
  let files: string[];
  try {
    files = readdirSync(confDir).filter((f) => CONF_EXTENSIONS.has(extname(f)));
  } catch {
    files = [];
  }
  const out: NetworkState[] = [];
  for (const f of files.sort()) {
    const file = join(confDir, f);
    try {
      const s = networkStateOf(JSON.parse(readFileSync(file, "utf8")), file);
      if (s) out.push(s);
    } catch {
      // not JSON: not a list libcni would load either
    }
  }
  if (out.length > 0) return out;
  return [networkStateOf({ name: DEFAULT_NETWORK, plugins: [{ type: "flannel" }] })!];
}
