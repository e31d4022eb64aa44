/**
 * `weft install`/`weft uninstall` for tests: the packaged executable run as an operator or an init
 * container runs it (optionally inside a node's network namespace), and listings of directories to
 * compare before and after (every entry's type, mode, size, content hash, symlink target; with `live`
 * also the inode and mtime, to prove a run touched nothing).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join, relative } from "node:path";
import type { TestNetns } from "./netns.js";
import { weftBinDir } from "./podpath.js";

export interface WeftRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout's lines, without the empty last one. */
  lines: string[];
}

/** The packaged weft (WEFT_BIN_DIR, default dist/bin). */
export const weftExe = () => join(weftBinDir(), "weft");

/** Runs `<exe> <args>` (default the packaged weft), in `netns` when given. */
export function runWeft(args: string[], o: { netns?: TestNetns; exe?: string } = {}): WeftRun {
  const exe = o.exe ?? weftExe();
  const r = o.netns
    ? spawnSync("ip", ["netns", "exec", o.netns.name, exe, ...args], { encoding: "utf8" })
    : spawnSync(exe, args, { encoding: "utf8" });
  if (r.error) throw r.error;
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    lines: r.stdout.split("\n").filter(Boolean),
  };
}

/** Runs weft and requires exit 0; returns the run. */
export function weftOk(args: string[], o: { netns?: TestNetns; exe?: string } = {}): WeftRun {
  const r = runWeft(args, o);
  if (r.status !== 0) throw new Error(`weft ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r;
}

const hashes = new Map<string, string>();

/** sha256 of a file, cached by inode, size and mtime (the executables are 120 MiB). */
function hashOf(path: string, key: string): string {
  const known = hashes.get(key);
  if (known) return known;
  const h = createHash("sha256").update(readFileSync(path)).digest("hex");
  hashes.set(key, h);
  return h;
}

/**
 * One line per entry under `dir` (itself included), sorted: `path type mode size hash|target`, and with
 * `live`, ` ino=<n> mtime=<ns>` too. A missing `dir` lists as `(missing)`.
 */
export function listing(dir: string, o: { live?: boolean } = {}): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path, { bigint: true });
    } catch {
      out.push(`${relative(dir, path) || "."} (missing)`);
      return;
    }
    const rel = relative(dir, path) || ".";
    const mode = (Number(st.mode) & 0o7777).toString(8);
    const live = o.live ? ` ino=${st.ino} mtime=${st.mtimeNs}` : "";
    if (st.isDirectory()) {
      out.push(`${rel} dir ${mode}${o.live ? ` ino=${st.ino}` : ""}`);
      for (const e of readdirSync(path).sort()) walk(join(path, e));
    } else if (st.isSymbolicLink()) {
      out.push(`${rel} symlink -> ${readlinkSync(path)}${live}`);
    } else {
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
      out.push(`${rel} file ${mode} ${st.size} ${hashOf(path, key)}${live}`);
    }
  };
  walk(dir);
  return out;
}

/** Total bytes of the regular files under `dir`, each inode counted once (hard links share one). */
export function footprint(dir: string): number {
  const seen = new Set<bigint>();
  let total = 0;
  const walk = (path: string) => {
    const st = lstatSync(path, { bigint: true });
    if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
    else if (st.isFile() && !seen.has(st.ino)) {
      seen.add(st.ino);
      total += Number(st.size);
    }
  };
  walk(dir);
  return total;
}
