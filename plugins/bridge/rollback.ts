import type { Logger } from "../../shared/log.js";

/**
 * What a failed ADD has to undo, newest first: the reference only releases the IPAM reservation and
 * leaves the veth and its addresses behind, so a retry fails with "already exists"; weft undoes it all.
 */
export class Rollback {
  private readonly steps: Array<{ what: string; undo: () => Promise<void> | void }> = [];

  add(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Runs every step even when one fails; failures are logged, the ADD's own error is what matters. */
  async run(log: Logger): Promise<void> {
    for (const { what, undo } of this.steps.reverse()) {
      try {
        await undo();
      } catch (err) {
        log.warn(`rollback: ${what} failed`, { error: (err as Error).message });
      }
    }
    this.steps.length = 0;
  }
}
