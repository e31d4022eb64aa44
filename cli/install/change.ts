/**
 * One change install or uninstall makes, described before it is made: `--dry-run` prints `planned`, a
 * real run makes it and prints `done`. A plan is the list of them, in the order they are applied.
 */
export interface Change {
  /** "would install /opt/cni/bin/weft (...)" */
  planned: string;
  /** "installed /opt/cni/bin/weft (...)" */
  done: string;
  /** Makes the change; `false` when it turned out there was nothing to do (then nothing is printed). */
  apply(): unknown;
}

export function change(
  verb: { planned: string; done: string },
  what: string,
  apply: Change["apply"],
): Change {
  return { planned: `would ${verb.planned} ${what}`, done: `${verb.done} ${what}`, apply };
}

/** Runs the changes in order, printing each as it is made; stops at the first failure (rethrown). */
export async function applyChanges(changes: Change[], out: (line: string) => void): Promise<void> {
  for (const c of changes) {
    if ((await c.apply()) !== false) out(c.done);
  }
}
