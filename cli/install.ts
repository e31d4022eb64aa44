import { existsSync, readFileSync } from "node:fs";
import { missingHostPrograms } from "./host-programs.js";
import { applyChanges } from "./install/change.js";
import { runCommand } from "./install/command.js";
import {
  CONFLIST_NAME,
  FLANNEL_CONFLIST,
  FLANNEL_DUALSTACK_CONFLIST,
  renderConflist,
  validateConflist,
} from "./install/conflists.js";
import { type InstallFlags, parseInstallFlags, UsageError } from "./install/flags.js";
import { isWeftExecutable } from "./install/identify.js";
import { ALL_NAMES } from "./install/manifest.js";
import { FORCE_HINT, planInstall } from "./install/plan-install.js";

/**
 * `weft install`: what an init container runs to put weft on a node (cli/install/ has the pieces).
 * Prints one line per change on stdout, `nothing to do: ...` when everything is already in place, and
 * warnings (missing host programs) on stderr. Exit 0, 1 when it cannot (nothing is changed when it
 * refuses), 2 for bad usage.
 */
export const USAGE = `usage: weft install [--bin-dir DIR] [--conf-dir DIR] [--conflist FILE | --backend vxlan|host-gw]
                    [--dual-stack] [--skip-conf] [--dry-run] [--force] [--from FILE]

Copies the weft executable into the bin dir (default /opt/cni/bin) once, makes the other names
(${ALL_NAMES.slice(1).join(", ")}) hard links to it (symlinks where the filesystem refuses
hard links), and writes the flannel conflist as
<conf-dir>/${CONFLIST_NAME} (default conf dir /etc/cni/net.d); every file lands by temp file + fsync +
rename, so a runtime never executes or reads a partial file. Other conflists are left alone. A second run
changes nothing. A name held by another program (the reference plugins) is replaced only with --force,
and the replaced file is kept as <name>.orig for 'weft uninstall --restore'.

  --bin-dir DIR      where the executables go (default /opt/cni/bin)
  --conf-dir DIR     where the conflist goes (default /etc/cni/net.d)
  --conflist FILE    install this list (validated) instead of the built-in kube-flannel list
  --backend NAME     vxlan or host-gw: checked only, both use the same list (the backend is weftd's)
  --dual-stack       the built-in list at cniVersion 1.0.0, for dual-stack nodes
  --skip-conf        install no conflist
  --dry-run          print what would change, change nothing
  --force            replace names held by other programs (kept as <name>.orig)
  --from FILE        the weft executable to install (default: this one)
`;

const fail = (msg: string) => process.stderr.write(`weft install: ${msg}\n`);

/** The executable to install: --from, else this one when it is the packaged weft (not node running JS). */
function sourceOf(flags: InstallFlags): string {
  if (flags.from) {
    if (!existsSync(flags.from)) throw new Error(`--from ${flags.from}: no such file`);
    if (!isWeftExecutable(flags.from)) throw new Error(`--from ${flags.from} is not a weft executable`);
    return flags.from;
  }
  if (!isWeftExecutable(process.execPath)) {
    throw new UsageError(
      `this weft runs on ${process.execPath} (from its sources), which is not an executable to install: ` +
        "give the packaged weft with --from FILE (npm run build makes dist/bin/weft)",
    );
  }
  return process.execPath;
}

function conflistText(flags: InstallFlags): string | undefined {
  if (flags.skipConf) return undefined;
  if (!flags.conflist) return renderConflist(flags.dualStack ? FLANNEL_DUALSTACK_CONFLIST : FLANNEL_CONFLIST);
  let text: string;
  try {
    text = readFileSync(flags.conflist, "utf8");
  } catch (err) {
    throw new Error(`--conflist ${flags.conflist}: ${(err as Error).message}`, { cause: err });
  }
  try {
    validateConflist(text);
  } catch (err) {
    throw new Error(
      `--conflist ${flags.conflist} is not a network list weft can install: ${(err as Error).message}`,
    );
  }
  return text;
}

export function main(argv: string[]): Promise<number> {
  return runCommand("install", USAGE, argv, async () => {
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const flags = parseInstallFlags(argv);
    const source = sourceOf(flags);
    const conflist = conflistText(flags);
    for (const p of missingHostPrograms()) {
      fail(`warning: ${p.name} is not in PATH: weft needs it for ${p.use} (Debian package ${p.pkg})`);
    }
    const plan = planInstall({
      binDir: flags.binDir,
      confDir: flags.confDir,
      source,
      conflist,
      force: flags.force,
    });
    if (plan.refusals.length > 0) {
      for (const r of plan.refusals) fail(r);
      if (plan.forceWouldDo) fail(FORCE_HINT);
      fail("nothing was changed");
      return 1;
    }
    if (plan.changes.length === 0) {
      const conf =
        conflist === undefined
          ? "no conflist (--skip-conf)"
          : `${flags.confDir}/${CONFLIST_NAME} is in place`;
      out(`nothing to do: weft is installed in ${flags.binDir} (${ALL_NAMES.join(", ")}) and ${conf}`);
      return 0;
    }
    if (flags.dryRun) {
      for (const c of plan.changes) out(c.planned);
      return 0;
    }
    await applyChanges(plan.changes, out);
    return 0;
  });
}
