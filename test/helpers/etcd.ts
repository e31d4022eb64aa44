import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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
 *
 * For daemons in other network namespaces (the e2e nodes), it runs inside a namespace they reach, on an
 * address of that namespace: `{ netns: underlay.hub.name, host: "192.168.77.254" }` gives
 * "http://192.168.77.254:2379" (etcd's own ports: the namespace is private), the server certificate
 * names that address, and etcdctl runs there too. `TestEtcd.create()` makes one that is not running
 * yet (etcd unreachable at a daemon's start); restart() starts it.
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
  /**
   * The network namespace etcd (and etcdctl) run in, e.g. an underlay's hub; its ports are then etcd's
   * defaults, 2379 and 2380 (nothing else listens in a test's private namespace).
   */
  netns?: string;
  /** The client URL's address (default 127.0.0.1); with TLS the server certificate names it. */
  host?: string;
}

/** A slow way in to etcd (TestEtcd.door()). */
export interface EtcdDoor {
  /** The endpoint through the door ("http://192.168.77.254:2479"). */
  endpoint: string;
  /** Holds what arrives from now on `ms` (0: passes it on at once); what is held keeps its order. */
  setDelay(ms: number): void;
  close(): Promise<void>;
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
  private netns: string | undefined;
  private readonly doors = new Set<EtcdDoor>();

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: TlsFiles | undefined,
    readonly name = "weft-test",
    private readonly initialCluster = `${name}=http://127.0.0.1:${peerPort}`,
    readonly host = "127.0.0.1",
  ) {
    this.endpoint = `${tls ? "https" : "http"}://${host}:${clientPort}`;
  }

  static async start(o: TestEtcdOptions = {}): Promise<TestEtcd> {
    const e = await TestEtcd.create(o);
    try {
      await e.launch();
      return e;
    } catch (err) {
      await e.stop();
      throw err;
    }
  }

  /** Everything start() makes (directory, certificates, ports) without starting etcd: restart() does. */
  static async create(o: TestEtcdOptions = {}): Promise<TestEtcd> {
    const dir = mkdtempSync(join(tmpdir(), "weft-etcd-"));
    try {
      const host = o.host ?? "127.0.0.1";
      const tls = o.tls ? makeCerts(join(dir, "tls"), host) : undefined;
      const [client, peer] = o.netns ? [2379, 2380] : [await freePort(), await freePort()];
      const e = new TestEtcd(dir, client, peer, tls, undefined, undefined, host);
      e.extraArgs = o.args ?? [];
      e.netns = o.netns;
      running.add(e);
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
    const client = `${scheme}://${this.host}:${this.clientPort}`;
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
      // `ip netns exec` execs etcd in place: the pid is etcd's, so kill() reaches it.
      const [cmd, ...args] = this.inNetns(["etcd", ...this.args()]);
      this.proc = spawn(cmd!, args, { stdio: ["ignore", log, log] });
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

  /** `cmd` as run in etcd's namespace (as is without one). */
  private inNetns(cmd: string[]): string[] {
    return this.netns ? ["ip", "netns", "exec", this.netns, ...cmd] : cmd;
  }

  /** Whether etcd is running now (not killed, not yet started). */
  get running(): boolean {
    const p = this.proc;
    return !!p && p.exitCode === null && p.signalCode === null;
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
    const [cmd, ...argv] = this.inNetns(["etcdctl", ...flags, ...args]);
    if (o.input !== undefined) {
      return new Promise((resolve, reject) => {
        const p = execFile(cmd!, argv, { env }, (err, stdout, stderr) =>
          err ? reject(new Error(`etcdctl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
        );
        p.stdin?.end(o.input);
      });
    }
    try {
      return (await run(cmd!, argv, { env })).stdout;
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

  /** Starts it (again, after kill(), or for the first time after create()) on the same data and ports; resolves once it answers. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /**
   * Another endpoint of this etcd, next to it (same namespace and address, the next port), that holds
   * every request `delayMs` before passing it on (answers are not held): clients that go through it
   * see the store as it was `delayMs` ago when they write, so two of them started together both read
   * the store before either's write arrives (test/helpers/delay-relay.ts; the kernel here has no netem).
   */
  async door(delayMs: number): Promise<EtcdDoor> {
    const port = this.netns ? this.clientPort + 100 : await freePort();
    const relay = fileURLToPath(new URL("./delay-relay.js", import.meta.url));
    const [cmd, ...args] = this.inNetns([
      process.execPath,
      relay,
      this.host,
      String(port),
      this.host,
      String(this.clientPort),
      String(delayMs),
    ]);
    const child = spawn(cmd!, args, { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("listening")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`the delay relay exited with ${code} at start`)));
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const door: EtcdDoor = {
      endpoint: `${this.tls ? "https" : "http"}://${this.host}:${port}`,
      setDelay: (ms) => child.stdin!.write(`delay ${ms}\n`),
      close: async () => {
        this.doors.delete(door);
        child.stdin!.end();
        await exited;
      },
    };
    this.doors.add(door);
    return door;
  }

  /** Ends it (and its doors) and removes its data and certificates. */
  async stop(): Promise<void> {
    for (const d of [...this.doors]) await d.close();
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

/** A CA, a server certificate for `host` and 127.0.0.1, a client certificate, and a stranger's (another CA). */
function makeCerts(dir: string, host = "127.0.0.1"): TlsFiles {
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
    `subjectAltName=IP:127.0.0.1,${host === "127.0.0.1" ? "" : `IP:${host},`}DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n`,
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
