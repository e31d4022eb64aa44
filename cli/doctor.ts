import { bridgeChecks } from "./doctor/bridge.js";
import { parseDoctorFlags, USAGE } from "./doctor/flags.js";
import { forwardingChecks } from "./doctor/forwarding.js";
import { ipvsChecks } from "./doctor/ipvs.js";
import { leakChecks } from "./doctor/leaks.js";
import { leaseChecks, storeChecks, subnetEnvChecks } from "./doctor/lease.js";
import { NodeState } from "./doctor/node.js";
import { hostProgramChecks, pluginChecks } from "./doctor/plugins.js";
import { applyRepairs, type Check, exitCode, formatJson, formatText, problem } from "./doctor/report.js";
import { routeChecks } from "./doctor/routes.js";
import { weftdChecks } from "./doctor/weftd.js";

/**
 * `weft doctor`: diagnoses the node it runs on (its network namespace) and says what to do, one line per
 * check; `--fix` applies the safe repairs. Each group of checks lives in cli/doctor/; they share one read
 * of each source (NodeState) and run side by side.
 */
const GROUPS: Array<[string, (node: NodeState) => Promise<Check[]>]> = [
  ["plugins", pluginChecks],
  ["host-programs", hostProgramChecks],
  ["subnet-env", subnetEnvChecks],
  ["weftd", weftdChecks],
  ["store", storeChecks],
  ["lease", leaseChecks],
  ["bridge", bridgeChecks],
  ["forwarding", forwardingChecks],
  ["routes", routeChecks],
  ["leaks", leakChecks],
  ["kube-ipvs0", (node) => ipvsChecks(node)],
];

/** A group that fails as a whole is a problem of its own, with the cause (doctor never dies half-way). */
async function runGroup(name: string, fn: (node: NodeState) => Promise<Check[]>, node: NodeState) {
  try {
    return await fn(node);
  } catch (err) {
    return [
      problem(name, `could not be checked: ${(err as Error).message}`, "run weft doctor as root on the node"),
    ];
  }
}

export async function main(argv: string[]): Promise<number> {
  const flags = parseDoctorFlags(argv);
  if ("error" in flags) {
    process.stderr.write(`weft doctor: ${flags.error}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const node = new NodeState(flags);
  const checks = (await Promise.all(GROUPS.map(([name, fn]) => runGroup(name, fn, node)))).flat();
  if (flags.fix) await applyRepairs(checks);
  process.stdout.write(flags.json ? formatJson(checks) : formatText(checks));
  return exitCode(checks);
}
