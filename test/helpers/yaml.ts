import { spawnSync } from "node:child_process";

/**
 * The documents of a YAML file, read by a real YAML parser: Debian's python3-yaml (PyYAML, YAML 1.1 like
 * the go-yaml behind kubectl), installed by scripts/host-deps.sh when missing. No npm dependency, and no
 * hand-written parser that could accept what kubectl refuses. Only JSON-representable documents.
 */
export function loadYamlDocuments(file: string): unknown[] {
  const script =
    "import json, sys, yaml\n" +
    "with open(sys.argv[1]) as f:\n" +
    "    json.dump(list(yaml.safe_load_all(f)), sys.stdout)\n";
  // /usr/bin/python3: Debian's, the one python3-yaml installs into (not a python3 earlier in PATH).
  const r = spawnSync("/usr/bin/python3", ["-c", script, file], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run /usr/bin/python3 (install python3-yaml): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`YAML parse of ${file} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown[];
}
