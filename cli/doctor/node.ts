import { existsSync } from "node:fs";
import type { Lease } from "../../daemon/lease.js";
import type { SubnetStore } from "../../daemon/store/store.js";
import { DEFAULT_SUBNET_FILE, readSubnetEnv, type SubnetEnv } from "../../shared/flannel/subnet-env.js";
import { createLogger } from "../../shared/log.js";
import { ipBatch } from "../../shared/net/ip.js";
import { type Family, tablesIn, trySaveAll } from "../../shared/net/iptables.js";
import type { LinkRecord } from "../../shared/net/link.js";
import { type NeighRecord, neighShow } from "../../shared/net/neigh.js";
import { type RouteRecord, routeShow } from "../../shared/net/route.js";
import { type CniSetup, loadConfDir } from "./conflist.js";
import type { DoctorFlags } from "./flags.js";

/**
 * What the checks look at, each read once and shared: the CNI set-up, subnet.env, the store's leases,
 * the kernel's links, addresses, routes and neighbours (one `ip -batch`), and the iptables rules (one
 * `iptables-save` per family). All of it in the network namespace doctor runs in.
 */

export interface KernelView {
  /** Every link with its addresses and details (`ip -d addr show`). */
  links: LinkRecord[];
  routes: Record<Family, RouteRecord[]>;
  neighs: NeighRecord[];
  /** Named network namespaces with their id as seen from here (`ip netns list`). */
  netns: Array<{ name: string; id?: number }>;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

export interface StoreView {
  description: string;
  leases: Lease[];
}

const once = <T>(fn: () => Promise<T>) => {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
};

const failed = (err: unknown): { ok: false; error: string } => ({ ok: false, error: (err as Error).message });

/** Links with addresses, routes of both families, neighbours and named namespaces: one `ip -batch`. */
export async function readKernel(): Promise<KernelView> {
  const reads = await ipBatch(
    [
      { line: "addr show", what: "list links and addresses", read: true },
      routeShow(4),
      routeShow(6),
      neighShow(),
      { line: "netns list", what: "list network namespaces", read: true },
    ],
    { details: true },
  );
  return {
    links: (reads[0] ?? []) as LinkRecord[],
    routes: { 4: (reads[1] ?? []) as RouteRecord[], 6: (reads[2] ?? []) as RouteRecord[] },
    neighs: (reads[3] ?? []) as NeighRecord[],
    netns: (reads[4] ?? []) as Array<{ name: string; id?: number }>,
  };
}

export class NodeState {
  constructor(readonly flags: DoctorFlags) {}

  private readonly confDir = once(async () => loadConfDir(this.flags.confDir));

  /** The network config the runtime uses (the conf dir's first by name), or why it cannot. */
  async runtimeConf(): Promise<Outcome<CniSetup>> {
    const r = (await this.confDir()).runtime;
    return "error" in r ? { ok: false, error: r.error } : { ok: true, value: r };
  }

  /**
   * flannel's config (the first in the conf dir that has the flannel plugin): the plugins it names and
   * where they keep their state. The conflist check says whether the runtime actually uses it.
   */
  async setup(): Promise<Outcome<CniSetup>> {
    const d = await this.confDir();
    if (d.flannel) return { ok: true, value: d.flannel };
    return {
      ok: false,
      error:
        "error" in d.runtime ? d.runtime.error : `no config in ${this.flags.confDir} has the flannel plugin`,
    };
  }

  /** weftd's subnet file: --subnet-file, else the one flannel's config reads (or its default). */
  async subnetFile(): Promise<string> {
    if (this.flags.subnetFile) return this.flags.subnetFile;
    const s = await this.setup();
    return s.ok ? s.value.subnetFile : DEFAULT_SUBNET_FILE;
  }

  readonly subnetEnv = once(async (): Promise<Outcome<SubnetEnv> & { file: string }> => {
    const file = await this.subnetFile();
    try {
      return { ok: true, value: readSubnetEnv(file), file };
    } catch (err) {
      return { ...failed(err), file };
    }
  });

  /**
   * The store's leases, or why they cannot be read; undefined when no store was named and the default
   * file store's directory does not exist (a node on etcd checked without --etcd-endpoints).
   */
  readonly store = once(async (): Promise<Outcome<StoreView> | undefined> => {
    const f = this.flags;
    const kind = f.store ?? (existsSync(f.storeDir) ? "file" : undefined);
    if (!kind) return undefined;
    let store: SubnetStore | undefined;
    let description = kind === "file" ? `file ${f.storeDir}` : `etcd ${f.etcdEndpoints.join(",")}`;
    try {
      if (kind === "file") {
        // The file store's list() creates nothing, so a missing directory reads as empty: say so instead.
        if (!existsSync(f.storeDir)) return { ok: false, error: `${f.storeDir} does not exist` };
        const { FileStore } = await import("../../daemon/store/file.js");
        store = new FileStore({ dir: f.storeDir });
      } else {
        // Loaded only here: gRPC and the protocol definitions stay out of a doctor run on the file store.
        const { createEtcdStore } = await import("../../daemon/store/etcd.js");
        store = createEtcdStore({
          endpoints: f.etcdEndpoints,
          prefix: f.etcdPrefix,
          caFile: f.etcdCafile,
          certFile: f.etcdCertfile,
          keyFile: f.etcdKeyfile,
          username: f.etcdUsername,
          password: f.etcdPassword,
          log: createLogger("weft"),
        });
      }
      description = store.description;
      return { ok: true, value: { description, leases: await store.list() } };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    } finally {
      await store?.close().catch(() => undefined);
    }
  });

  readonly kernel = once(readKernel);

  /** The iptables tables of a family by name, or why they cannot be read. */
  private readonly saved = new Map<Family, Promise<Outcome<Map<string, string>>>>();
  iptables(family: Family): Promise<Outcome<Map<string, string>>> {
    let p = this.saved.get(family);
    if (!p) {
      p = trySaveAll(family).then((r) =>
        r.ok ? { ok: true as const, value: tablesIn(r.saved) } : { ok: false as const, error: r.message },
      );
      this.saved.set(family, p);
    }
    return p;
  }

  /** The node's own global addresses (its public IP is one of them). */
  async addresses(): Promise<string[]> {
    const { links } = await this.kernel();
    return links.flatMap((l) =>
      (l.addr_info ?? []).filter((a) => a.scope === undefined || a.scope === "global").map((a) => a.local),
    );
  }
}
