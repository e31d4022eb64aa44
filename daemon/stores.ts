import type { Logger } from "../shared/log.js";
import type { Flags, StoreKind } from "./flags.js";
import { FileStore } from "./store/file.js";
import type { SubnetStore } from "./store/store.js";

/** The stores by `--store` kind, so the daemon opens one without knowing which. */
export type StoreFactory = (flags: Flags, log: Logger) => SubnetStore | Promise<SubnetStore>;

const factories = new Map<StoreKind, StoreFactory>([["file", (f) => new FileStore({ dir: f.storeDir })]]);

export function registerStore(kind: StoreKind, factory: StoreFactory): void {
  factories.set(kind, factory);
}

export async function openStore(flags: Flags, log: Logger): Promise<SubnetStore> {
  const factory = factories.get(flags.store);
  if (!factory) throw new Error(`the ${flags.store} store is not in this build`);
  return factory(flags, log);
}

// etcd (gRPC and its protocol definitions) is loaded only when chosen: never in the plugins.
registerStore("etcd", async (f, log) =>
  (await import("./store/etcd.js")).createEtcdStore({
    endpoints: f.etcdEndpoints,
    prefix: f.etcdPrefix,
    caFile: f.etcdCafile || undefined,
    certFile: f.etcdCertfile || undefined,
    keyFile: f.etcdKeyfile || undefined,
    username: f.etcdUsername || undefined,
    password: f.etcdPassword || undefined,
    log,
  }),
);
