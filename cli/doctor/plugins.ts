import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { missingHostPrograms } from "../host-programs.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * The runtime's side: the network config it picks, every plugin that config names (libcni runs VERSION
 * on each at load, so one missing binary leaves the node NotReady: anchors 6.3), and the host programs
 * the plugins and weftd start.
 */

/** weft's own plugin names: `weft install` puts them in place; anything else comes from another package. */
const WEFT_PLUGINS = new Set(["flannel", "bridge", "host-local", "portmap"]);

export interface VersionAnswer {
  cniVersion?: string;
  supportedVersions?: string[];
}

/** Runs `CNI_COMMAND=VERSION <file>` as libcni does; resolves the answer or rejects with the reason. */
export function askVersion(file: string, cniVersion: string, timeoutMs = 5000): Promise<VersionAnswer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [],
      {
        env: { ...process.env, CNI_COMMAND: "VERSION" },
        timeout: timeoutMs,
        maxBuffer: 1 << 20,
      },
      (err, stdout, stderr) => {
        const text = String(stdout).trim();
        if (err) {
          const e = err as Error & { killed?: boolean; code?: number | string };
          const why = e.killed
            ? `no answer within ${timeoutMs} ms`
            : typeof e.code === "number"
              ? `exit status ${e.code}`
              : e.message;
          const said = (text || String(stderr)).trim().split("\n")[0];
          reject(new Error(said ? `${why}: ${said}` : why));
          return;
        }
        try {
          resolve(JSON.parse(text) as VersionAnswer);
        } catch {
          reject(
            new Error(
              `answered something that is not a CNI version result: ${JSON.stringify(text.slice(0, 200))}`,
            ),
          );
        }
      },
    );
    // A plugin that exits without reading its input closes the pipe: that is its answer, not a crash.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(JSON.stringify({ cniVersion }));
  });
}

function installHint(type: string, binDir: string): string {
  return WEFT_PLUGINS.has(type)
    ? `weft install --bin-dir ${binDir} (puts every weft plugin in place atomically)`
    : `install the package that ships the "${type}" plugin (containernetworking-plugins) into ${binDir}`;
}

async function pluginCheck(type: string, binDir: string, cniVersion: string): Promise<Check> {
  const id = `plugin:${type}`;
  const file = join(binDir, type);
  let mode: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return problem(id, `${file} is not a file`, installHint(type, binDir));
    mode = st.mode;
  } catch {
    return problem(
      id,
      `${file} is missing: libcni refuses the whole network (failed to find plugin "${type}" in path [${binDir}]) and the node stays NotReady`,
      installHint(type, binDir),
    );
  }
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return problem(
      id,
      `${file} is not executable (mode ${(mode & 0o7777).toString(8).padStart(4, "0")})`,
      `chmod 0755 ${file}, or ${installHint(type, binDir)}`,
    );
  }
  let answer: VersionAnswer;
  try {
    answer = await askVersion(file, cniVersion);
  } catch (err) {
    return problem(
      id,
      `${file} does not answer CNI_COMMAND=VERSION: ${(err as Error).message}`,
      `replace it (a partly copied file gives "exec format error"): ${installHint(type, binDir)}${WEFT_PLUGINS.has(type) ? " --force" : ""}`,
    );
  }
  const versions = answer.supportedVersions ?? [];
  if (!versions.includes(cniVersion))
    return problem(
      id,
      `${file} speaks CNI ${versions.join(", ") || "nothing"}, not the list's cniVersion ${cniVersion}`,
      `update the plugin (${installHint(type, binDir)}) or lower the list's cniVersion`,
    );
  return ok(id, `${file} answers VERSION (speaks ${cniVersion})`);
}

export async function pluginChecks(node: NodeState): Promise<Check[]> {
  const runtime = await node.runtimeConf();
  const setup = await node.setup();
  const { confDir, binDir } = node.flags;
  const flannelFile = setup.ok ? setup.value.file : undefined;
  const out: Check[] = [];
  if (!runtime.ok) {
    out.push(
      problem(
        "conflist",
        `${runtime.error}: the runtime has no usable network, so no pod gets an address`,
        flannelFile
          ? `remove or fix it: it sorts before flannel's ${flannelFile}, and the runtime takes the first file`
          : `weft install --conf-dir ${confDir} writes flannel's list (10-flannel.conflist)`,
      ),
    );
  } else if (!runtime.value.flannel) {
    const r = runtime.value;
    out.push(
      problem(
        "conflist",
        `the runtime uses ${r.file} (the first config by name), which has no flannel plugin (${r.plugins.map((p) => p.type).join(", ")}): ${flannelFile ? `flannel's ${flannelFile} is ignored` : "weft's network is not the one pods get"}`,
        `remove ${r.file} (a leftover of another CNI?) or give flannel's list a name that sorts first (10-flannel.conflist)`,
      ),
    );
  } else {
    const r = runtime.value;
    out.push(
      ok(
        "conflist",
        `${r.file}: network ${r.name}, cniVersion ${r.cniVersion}, plugins ${r.plugins.map((p) => p.type).join(" -> ")} (delegate ${r.delegateType} on ${r.bridge}, ${r.ipamType})`,
      ),
    );
  }
  // The plugins flannel's list needs (the list the runtime should be using).
  const list = setup.ok ? setup.value : runtime.ok ? runtime.value : undefined;
  if (!list) return [...out, skipped("plugins", "no usable config names the plugins")];
  out.push(...(await Promise.all(list.executables.map((t) => pluginCheck(t, binDir, list.cniVersion)))));
  return out;
}

export async function hostProgramChecks(): Promise<Check[]> {
  const missing = missingHostPrograms();
  if (missing.length === 0) return [ok("host-programs", "every program weft starts is in PATH")];
  const pkgs = [...new Set(missing.map((p) => p.pkg))];
  return [
    problem(
      "host-programs",
      `missing from PATH: ${missing.map((p) => `${p.name} (${p.use})`).join("; ")}`,
      `apt-get install ${pkgs.join(" ")} (or your distribution's packages of the same names)`,
    ),
  ];
}
