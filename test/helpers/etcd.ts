import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/**
 * A throwaway etcd (Debian's etcd-server, installed by scripts/host-deps.sh) for the store tests: on
 * 127.0.0.1 at free ports, its data in a temp dir, optionally with TLS and client certificates made with
 * openssl for this run. It can be killed and restarted on the same data and ports (fault tests), and
 * stop() leaves nothing: process gone, data and certificates removed.
 *
 *   const etcd = await TestEtcd.start({ tls: true });
 *   etcd.endpoint            // "https://127.0.0.1:41234"
 *   etcd.tls.clientCert      // files for --etcd-certfile/--etcd-keyfile/--etcd-cafile
 *   await etcd.etcdctl(["get", "--prefix", "/coreos.com/network"]);
 *   await etcd.stop();
 */
export interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA etcd does not trust. */
  strangerCert: string;
  strangerKey: string;
}

export interface TestEtcdOptions {
  tls?: boolean;
  /** More etcd flags (e.g. "--auth-token-ttl=2"). */
  args?: string[];
}

export interface StoredKv {
  key: string;
  value: string;
  /** The etcd lease ID in decimal ("0": none). */
  lease: string;
  modRevision: number;
}

const run = promisify(execFile);
const running = new Set<TestEtcd>();

process.on("exit", () => {
  for (const e of running) e.killNow();
});

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class TestEtcd {
  readonly endpoint: string;
  private proc: ChildProcess | undefined;
  private user: string | undefined;
  private extraArgs: string[] = [];

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: TlsFiles | undefined,
    readonly name = "weft-test",
    private readonly initialCluster = `${name}=http://127.0.0.1:${peerPort}`,
  ) {
    this.endpoint = `${tls ? "https" : "http"}://127.0.0.1:${clientPort}`;
  }

  static async start(o: TestEtcdOptions = {}): Promise<TestEtcd> {
    const dir = mkdtempSync(join(tmpdir(), "weft-etcd-"));
    try {
      const tls = o.tls ? makeCerts(join(dir, "tls")) : undefined;
      const e = new TestEtcd(dir, await freePort(), await freePort(), tls);
      e.extraArgs = o.args ?? [];
      running.add(e);
      await e.launch();
      return e;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A cluster of `size` members on 127.0.0.1 (plain http), each its own TestEtcd, started together. */
  static async cluster(size: number): Promise<TestEtcd[]> {
    const members: TestEtcd[] = [];
    const ports = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
    const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(",");
    for (let i = 0; i < size; i++) {
      const dir = mkdtempSync(join(tmpdir(), "weft-etcd-"));
      const m = new TestEtcd(dir, ports[i]!.client, ports[i]!.peer, undefined, `m${i}`, initial);
      members.push(m);
      running.add(m);
    }
    try {
      // Every member must be up before any answers: a member alone has no quorum.
      await Promise.all(members.map((m) => m.launch()));
      return members;
    } catch (err) {
      await Promise.all(members.map((m) => m.stop()));
      throw err;
    }
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  get logFile(): string {
    return join(this.dir, "etcd.log");
  }

  private args(): string[] {
    const scheme = this.tls ? "https" : "http";
    const client = `${scheme}://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const args = [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${this.initialCluster}`,
      "--initial-cluster-token=weft-test",
      "--logger=zap",
      "--log-level=warn",
    ];
    args.push(...this.extraArgs);
    if (this.tls) {
      args.push(
        `--cert-file=${this.tls.serverCert}`,
        `--key-file=${this.tls.serverKey}`,
        `--trusted-ca-file=${this.tls.ca}`,
        "--client-cert-auth",
      );
    }
    return args;
  }

  private async launch(): Promise<void> {
    const log = openSync(this.logFile, "a");
    try {
      this.proc = spawn("etcd", this.args(), { stdio: ["ignore", log, log] });
    } finally {
      closeSync(log);
    }
    const proc = this.proc;
    let exited = false;
    proc.on("exit", () => {
      exited = true;
    });
    const until = Date.now() + 20_000;
    for (;;) {
      if (exited) throw new Error(`etcd exited at start:\n${this.logTail()}`);
      try {
        await this.etcdctl(["get", "/weft-test-probe"], { timeoutS: 1 });
        return;
      } catch (err) {
        if (Date.now() > until) throw new Error(`etcd did not answer within 20 s: ${err}\n${this.logTail()}`);
      }
      await sleep(100);
    }
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** etcdctl against this etcd (its TLS files and user when set); resolves stdout. */
  async etcdctl(args: string[], o: { timeoutS?: number; input?: string } = {}): Promise<string> {
    const flags = [
      `--endpoints=${this.endpoint}`,
      `--command-timeout=${o.timeoutS ?? 5}s`,
      "--dial-timeout=2s",
    ];
    if (this.tls) {
      flags.push(`--cacert=${this.tls.ca}`, `--cert=${this.tls.clientCert}`, `--key=${this.tls.clientKey}`);
    }
    if (this.user) flags.push(`--user=${this.user}`);
    const env = { ...process.env, ETCDCTL_API: "3" };
    if (o.input !== undefined) {
      return new Promise((resolve, reject) => {
        const p = execFile("etcdctl", [...flags, ...args], { env }, (err, stdout, stderr) =>
          err ? reject(new Error(`etcdctl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
        );
        p.stdin?.end(o.input);
      });
    }
    try {
      return (await run("etcdctl", [...flags, ...args], { env })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`etcdctl ${args.join(" ")}: ${e.stderr || e.message}`);
    }
  }

  /** `etcdctl put`, optionally on a lease (hex, as etcdctl prints it). */
  async put(key: string, value: string, leaseHex?: string): Promise<void> {
    // `--` ends the options: a value may start with "-"; values go through argv untouched.
    await this.etcdctl(["put", ...(leaseHex ? [`--lease=${leaseHex}`] : []), "--", key, value]);
  }

  /** Grants an etcd lease as flanneld does; returns its ID in hex. */
  async grant(ttlSeconds: number): Promise<string> {
    const out = await this.etcdctl(["lease", "grant", String(ttlSeconds)]);
    const m = /lease ([0-9a-f]+) granted/.exec(out);
    if (!m) throw new Error(`unexpected etcdctl lease grant output: ${out}`);
    return m[1]!;
  }

  /** Every key under `prefix` with its value, lease and ModRevision, as etcd holds them. */
  async getPrefix(prefix: string): Promise<StoredKv[]> {
    // etcdctl prints int64s as bare JSON numbers: lease IDs lose their low digits in JSON.parse unless
    // they are quoted first.
    const text = (await this.etcdctl(["get", "--prefix", prefix, "-w", "json"])).replace(
      /"lease":(\d+)/g,
      '"lease":"$1"',
    );
    const out = JSON.parse(text);
    return ((out.kvs ?? []) as Array<Record<string, unknown>>).map((kv) => ({
      key: Buffer.from(String(kv.key), "base64").toString(),
      value: Buffer.from(String(kv.value ?? ""), "base64").toString(),
      lease: kv.lease === undefined ? "0" : String(kv.lease),
      modRevision: Number(kv.mod_revision),
    }));
  }

  async get(key: string): Promise<StoredKv | undefined> {
    return (await this.getPrefix(key)).find((kv) => kv.key === key);
  }

  /** The store's current revision. */
  async revision(): Promise<number> {
    const out = JSON.parse(await this.etcdctl(["get", "/", "-w", "json"]));
    return Number(out.header.revision);
  }

  /** Turns authentication on with a root user; etcdctl here logs in as it from then on. */
  async enableAuth(password: string): Promise<void> {
    await this.etcdctl(["user", "add", "root", `--new-user-password=${password}`]);
    await this.etcdctl(["auth", "enable"]);
    this.user = `root:${password}`;
  }

  /** SIGKILL, as a crash or an OOM kill would end it; the data stays. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once("exit", resolve));
    p.kill("SIGKILL");
    await exited;
  }

  /** Starts it again on the same data and ports; resolves once it answers. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Ends it and removes its data and certificates. */
  async stop(): Promise<void> {
    await this.kill();
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For the exit hook: no waiting. */
  killNow(): void {
    this.proc?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/** A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's (another CA). */
function makeCerts(dir: string): TlsFiles {
  mkdirSync(dir, { recursive: true });
  const key = (name: string) =>
    openssl(
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`],
      dir,
    );
  const ca = (name: string) => {
    key(name);
    openssl(
      [
        "req",
        "-x509",
        "-new",
        "-key",
        `${name}.key`,
        "-subj",
        `/CN=${name}`,
        "-days",
        "2",
        "-out",
        `${name}.crt`,
      ],
      dir,
    );
  };
  const cert = (name: string, signer: string, ext: string) => {
    key(name);
    openssl(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-out", `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        `${signer}.crt`,
        "-CAkey",
        `${signer}.key`,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.crt`,
      ],
      dir,
    );
  };
  ca("weft-test-ca");
  ca("stranger-ca");
  cert(
    "server",
    "weft-test-ca",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n",
  );
  cert("client", "weft-test-ca", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n");
  cert("stranger", "stranger-ca", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n");
  const f = (name: string) => join(dir, name);
  return {
    ca: f("weft-test-ca.crt"),
    serverCert: f("server.crt"),
    serverKey: f("server.key"),
    clientCert: f("client.crt"),
    clientKey: f("client.key"),
    strangerCert: f("stranger.crt"),
    strangerKey: f("stranger.key"),
  };
}
