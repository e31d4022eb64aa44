import { applyChanges, type Change } from "./install/change.js";
import { runCommand } from "./install/command.js";
import { parseUninstallFlags } from "./install/flags.js";
import { manifestPath } from "./install/manifest.js";
import { flannelNetworks } from "./install/node-state.js";
import { planUninstall } from "./install/plan-uninstall.js";

/**
 * `weft uninstall`: removes what `weft install` wrote (its manifest says what), `--restore` puts the
 * replaced `.orig` files back, `--purge` also removes the node's flannel state in this network
 * namespace (cli/install/purge.ts). One line per change on stdout, notes on stderr.
 */
export const USAGE = `usage: weft uninstall [--bin-dir DIR] [--conf-dir DIR] [--restore] [--purge] [--dry-run]

Removes exactly what 'weft install' wrote into the bin dir and the conf dir (recorded in
<bin-dir>/.weft-install.json); a file changed since is left in place and named.

  --bin-dir DIR      default /opt/cni/bin
  --conf-dir DIR     default /etc/cni/net.d
  --restore          put back the files install replaced (<name>.orig), e.g. the reference plugins
  --purge            also delete the flannel networks' state on this node, in this network namespace:
                     the bridge (cni0) and its pod veths, flannel.<VNI>, weftd's FLANNEL-POSTRTG and
                     FLANNEL-FWD chains, the plugins' CNI-HOSTPORT-*, CNI-DN-* and masquerade chains and
                     nftables tables, flannel's saved configs and host-local's reservations (paths from
                     the conflists in --conf-dir). Stop weftd first, and drain the node's pods.
  --dry-run          print what would change, change nothing
`;

const note = (msg: string) => process.stderr.write(`weft uninstall: ${msg}\n`);

export function main(argv: string[]): Promise<number> {
  return runCommand("uninstall", USAGE, argv, async () => {
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const flags = parseUninstallFlags(argv);
    // The networks are read before the conflist goes: purge needs its paths.
    const networks = flags.purge ? flannelNetworks(flags.confDir) : [];
    const plan = planUninstall(flags);
    const changes: Change[] = [...plan.changes];
    const notes = [...plan.notes];
    if (flags.purge) {
      // Loaded here: only --purge needs the kernel-object modules.
      const { planPurge } = await import("./install/purge.js");
      const purge = await planPurge(networks);
      changes.push(...purge.changes);
      notes.push(...purge.notes);
    }
    if (!plan.manifest && !flags.restore)
      notes.push(`no weft installed by 'weft install' in ${flags.binDir} (no ${manifestPath(flags.binDir)})`);
    for (const n of notes) note(n);
    if (changes.length === 0) {
      out(
        `nothing to do: nothing of weft's left in ${flags.binDir} and ${flags.confDir}${flags.purge ? ", nor any flannel state to purge" : ""}`,
      );
      return 0;
    }
    if (flags.dryRun) {
      for (const c of changes) out(c.planned);
      return 0;
    }
    await applyChanges(changes, out);
    return 0;
  });
}
