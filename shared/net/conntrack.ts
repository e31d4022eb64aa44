import { run } from "./run.js";

/**
 * Connection-tracking entries, through conntrack-tools (the reference uses netlink's
 * ConntrackDeleteFilters; the tool sends the same netlink request).
 */
export type ConntrackFamily = 4 | 6;

export interface FlowFilter {
  protocol: "tcp" | "udp" | "sctp";
  /** Destination port of the original direction (the port the client connected to). */
  origDstPort: number;
  family: ConntrackFamily;
}

/**
 * Deletes the flows matching `filter` and returns how many went. conntrack exits 1 with "0 flow entries
 * have been deleted" when nothing matched, which is not an error.
 */
export async function deleteFlows(filter: FlowFilter): Promise<number> {
  const args = [
    "-D",
    "-p",
    filter.protocol,
    "--orig-port-dst",
    String(filter.origDstPort),
    "-f",
    filter.family === 4 ? "ipv4" : "ipv6",
  ];
  const r = await run("conntrack", args, { allowFail: true });
  const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
  if (m) return Number(m[1]);
  if (r.exitCode === 0) return 0;
  throw new Error(`conntrack ${args.join(" ")}: ${r.stderr.trim() || `exit status ${r.exitCode}`}`);
}
