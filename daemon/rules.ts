import type { Lease } from "./lease.js";

/**
 * PLACEHOLDER on branch `core`: the backend branch owns this module (flanneld's FLANNEL-POSTRTG and
 * FLANNEL-FWD chains) and its version replaces this one when merging (same signature). This stand-in
 * changes nothing.
 */
export interface RulesOptions {
  network?: string;
  ipv6Network?: string;
  lease: Lease;
  ipMasq: boolean;
  forwardRules: boolean;
  randomFully?: boolean;
}

export async function syncRules(_opts: RulesOptions): Promise<void> {}
