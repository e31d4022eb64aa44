import { existsSync } from "node:fs";
import type { Attachment } from "../cni/types.js";
import type { IpamConfig } from "./config.js";
import { withFileLock } from "./flock.js";
import { type Owner, ReservationStore } from "./store.js";

function isValid(owner: Owner, valid: Attachment[]): boolean {
  // A legacy file names no interface: any attachment of that container keeps it.
  return valid.some(
    (a) =>
      a.containerID.trim() === owner.containerId && (owner.ifname === undefined || a.ifname === owner.ifname),
  );
}

/**
 * GC (CNI 1.1): releases every reservation no valid attachment holds, following the conservative rules of
 * the upstream proposal (containernetworking/plugins#1047, PR #1289): `lock` and `last_reserved_ip.*`
 * are never touched, a legacy ID-only file survives when any attachment has that container ID, and an
 * empty list releases everything (the runtime says nothing is attached). Files that hold no owner and temp
 * files a crashed writer left are released too. Files whose name is not an address are left alone.
 * Returns the names released.
 */
export async function gcReservations(cfg: IpamConfig, valid: Attachment[] | undefined): Promise<string[]> {
  if (valid === undefined) return [];
  const store = ReservationStore.open(cfg.dataDir, cfg.name, false);
  if (!existsSync(store.dir)) return [];
  return withFileLock(store.lockPath, () => {
    const released: string[] = [];
    for (const r of store.scan({ locked: true })) {
      if (!r.ip) continue;
      if (r.owner && isValid(r.owner, valid)) continue;
      if (store.remove(r.name)) released.push(r.name);
    }
    return released;
  });
}
