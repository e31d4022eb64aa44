import type { Flags, StoreKind } from "./flags.js";
import { FileStore } from "./store/file.js";
import type { SubnetStore } from "./store/store.js";

/** The stores by `--store` kind, so the daemon opens one without knowing which. */
export type StoreFactory = (flags: Flags) => SubnetStore | Promise<SubnetStore>;

const factories = new Map<StoreKind, StoreFactory>([["file", (f) => new FileStore({ dir: f.storeDir })]]);

export function registerStore(kind: StoreKind, factory: StoreFactory): void {
  factories.set(kind, factory);
}

export async function openStore(flags: Flags): Promise<SubnetStore> {
  const factory = factories.get(flags.store);
  if (!factory) throw new Error(`the ${flags.store} store is not in this build`);
  return factory(flags);
}

// MERGE: the etcd store (daemon/store/etcd.ts) is on the etcd branch; register it here when merging, e.g.
//   registerStore("etcd", async (f) => new (await import("./store/etcd.js")).EtcdStore(f));
