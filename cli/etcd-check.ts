import type { Lease } from "../daemon/lease.js";
import { createEtcdStore, DEFAULT_ETCD_TIMEOUT_MS } from "../daemon/store/etcd.js";
import { createLogger } from "../shared/log.js";

/**
 * `weft etcd-check`: reaches etcd exactly as weftd does (its store, TLS, auth and deadlines) and says
 * what it finds: the network config, the subnet leases, and with --lease a full round (create, watch,
 * renew, release) on a subnet of your choosing under the given prefix. For an operator it answers "can
 * this node talk to etcd, and what does it see?"; for the tests it proves the packaged executable
 * speaks etcd (the gRPC definitions are embedded at build time).
 */
const USAGE = `usage: weft etcd-check --etcd-endpoints URL[,URL...] [--etcd-prefix PREFIX]
                      [--etcd-cafile FILE] [--etcd-certfile FILE] [--etcd-keyfile FILE]
                      [--etcd-username USER] [--etcd-password PASSWORD] [--timeout MS]
                      [--lease SUBNET --public-ip IP]

Reads <prefix>/config and the leases under <prefix>/subnets/ (default prefix /coreos.com/network).
With --lease, also creates a 60 s lease on SUBNET for IP, waits for the watch to show it, renews and
releases it: use a prefix or a subnet no node uses.
`;

const FLAGS = [
  "etcd-endpoints",
  "etcd-prefix",
  "etcd-cafile",
  "etcd-certfile",
  "etcd-keyfile",
  "etcd-username",
  "etcd-password",
  "timeout",
  "lease",
  "public-ip",
] as const;
type Flag = (typeof FLAGS)[number];

function parse(argv: string[]): Partial<Record<Flag, string>> | string {
  const out: Partial<Record<Flag, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(FLAGS as readonly string[]).includes(m[1]!)) return `unknown argument ${JSON.stringify(arg)}`;
    const value = m[2] ?? argv[++i];
    if (value === undefined) return `--${m[1]} needs a value`;
    out[m[1] as Flag] = value;
  }
  if (!out["etcd-endpoints"]) return "--etcd-endpoints is required";
  if (out.lease && !out["public-ip"]) return "--lease needs --public-ip";
  return out;
}

function show(l: Lease): string {
  const exp = l.expiration === undefined ? "reservation" : `expires ${new Date(l.expiration).toISOString()}`;
  return `${[l.subnet, l.ipv6Subnet].filter(Boolean).join(" ")} PublicIP ${l.attrs.PublicIP} ${l.attrs.BackendType ?? "-"} ${exp}`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const flags = parse(argv);
  if (typeof flags === "string") {
    process.stderr.write(`weft etcd-check: ${flags}\n${USAGE}`);
    return 2;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const timeoutMs = flags.timeout ? Number(flags.timeout) : DEFAULT_ETCD_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    process.stderr.write(`weft etcd-check: --timeout must be a positive number of milliseconds\n`);
    return 2;
  }
  let store: ReturnType<typeof createEtcdStore> | undefined;
  try {
    store = createEtcdStore({
      endpoints: flags["etcd-endpoints"]!.split(",").filter(Boolean),
      prefix: flags["etcd-prefix"] ?? "/coreos.com/network",
      caFile: flags["etcd-cafile"],
      certFile: flags["etcd-certfile"],
      keyFile: flags["etcd-keyfile"],
      username: flags["etcd-username"],
      password: flags["etcd-password"],
      timeoutMs,
      log: createLogger("weft"),
    });
    const s = store;
    const config = await s.networkConfig();
    out(config === undefined ? "config: none" : `config: ${config}`);
    const leases = await s.list();
    out(`leases: ${leases.length}`);
    for (const l of leases) out(`lease: ${show(l)}`);
    if (flags.lease) await round(s, flags.lease, flags["public-ip"]!, timeoutMs, out);
    out("ok");
    return 0;
  } catch (err) {
    process.stderr.write(`weft etcd-check: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store?.close();
  }
}

async function round(
  s: ReturnType<typeof createEtcdStore>,
  subnet: string,
  publicIP: string,
  timeoutMs: number,
  out: (line: string) => void,
): Promise<void> {
  const mine: Lease = { subnet, attrs: { PublicIP: publicIP, PublicIPv6: null, BackendType: "weft-check" } };
  const seen = (want: boolean) =>
    new Promise<void>((resolve, reject) => {
      let last: Error | undefined;
      const timer = setTimeout(() => {
        stop();
        reject(
          new Error(
            `the watch did not show ${subnet} ${want ? "arriving" : "leaving"} within ${timeoutMs} ms${last ? `: ${last.message}` : ""}`,
          ),
        );
      }, timeoutMs);
      const stop = s.watch(
        (leases) => {
          if (leases.some((l) => l.subnet === subnet && l.attrs.PublicIP === publicIP) === want) {
            clearTimeout(timer);
            stop();
            resolve();
          }
        },
        (err) => {
          last = err;
        },
      );
    });
  const created = await s.create(mine, 60_000);
  if (!created) throw new Error(`${subnet} is taken: choose a subnet no node holds`);
  out(`created: ${show(created)}`);
  try {
    await seen(true);
    out("watched: the lease arrived");
    const renewed = await s.renew(created, 60_000);
    out(`renewed: ${show(renewed)}`);
  } finally {
    await s.release(created);
  }
  out("released");
  await seen(false);
  out("watched: the lease left");
}
