import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { basename } from "node:path";
import type { NodeState } from "./node.js";
import { type Check, ok, problem } from "./report.js";

/**
 * weftd alive and ready: `/healthz` and `/readyz` (whose 503 body says why it is not ready) when doctor
 * knows the URL, else a weftd or flanneld process in this network namespace.
 */

const TIMEOUT_MS = 2000;

export interface HttpAnswer {
  status: number;
  body: string;
}

/** GET `url` within the timeout: the status and body, or the transport error. */
export function fetchText(url: string, timeoutMs = TIMEOUT_MS): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** Processes named weftd or flanneld in the same network namespace as this one, as "name (pid N)". */
export function daemonsHere(proc = "/proc"): string[] {
  let self: string;
  try {
    self = readlinkSync(`${proc}/self/ns/net`);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const pid of readdirSync(proc)) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`${proc}/${pid}/ns/net`) !== self) continue;
      const argv = readFileSync(`${proc}/${pid}/cmdline`, "utf8").split("\0");
      const comm = readFileSync(`${proc}/${pid}/comm`, "utf8").trim();
      const name = [comm, basename(argv[0] ?? "")].find((n) => n === "weftd" || n === "flanneld");
      if (name) out.push(`${name} (pid ${pid})`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

export async function weftdChecks(node: NodeState): Promise<Check[]> {
  const url = node.flags.healthzUrl;
  if (!url) {
    const found = daemonsHere();
    if (found.length === 0)
      return [
        problem(
          "weftd",
          "no weftd (or flanneld) process runs in this network namespace: nothing leases the subnet, writes subnet.env or routes to the other nodes",
          "start weftd (the DaemonSet's pod, or the service); give --healthz-url to check its readiness too",
        ),
      ];
    return [ok("weftd", `${found.join(", ")} runs here; readiness not checked (give --healthz-url)`)];
  }
  let health: HttpAnswer;
  try {
    health = await fetchText(`${url}/healthz`);
  } catch (err) {
    return [
      problem(
        "weftd",
        `weftd does not answer at ${url}/healthz: ${(err as Error).message}`,
        `start weftd, or give --healthz-url weftd's own --healthz-ip and --healthz-port (its health server is off by default)`,
      ),
    ];
  }
  if (health.status !== 200)
    return [
      problem(
        "weftd",
        `${url}/healthz answers ${health.status}: ${health.body}`,
        `check that --healthz-url points at weftd`,
      ),
    ];
  let ready: HttpAnswer;
  try {
    ready = await fetchText(`${url}/readyz`);
  } catch (err) {
    return [
      problem(
        "weftd",
        `weftd is alive but ${url}/readyz fails: ${(err as Error).message}`,
        "see weftd's log",
      ),
    ];
  }
  if (ready.status === 200) return [ok("weftd", `alive and ready (${url})`)];
  return [
    problem(
      "weftd",
      `weftd is alive but not ready (${url}/readyz ${ready.status}): ${ready.body}`,
      "act on the reason above (weftd's log has the details); weftd becomes ready by itself once it is resolved",
    ),
  ];
}
