import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort, TestEtcd } from "../helpers/etcd.js";
import { uniqueName } from "../helpers/names.js";
import { spawnAsync } from "../helpers/spawn-async.js";

/**
 * The packaged executable talks to etcd. etcd3 loads its .proto files from its package directory at run
 * time (microsoft/etcd3#179, vercel/ncc#898) and protobufjs finds `long` (64-bit lease IDs and revisions)
 * through a runtime require; neither exists inside the single executable, so the build embeds both.
 * The executable is copied alone to an empty directory and run from there with a PATH without Node.js,
 * through `weft etcd-check`, which uses weftd's etcd store: config, list, create, watch, renew (a
 * KeepAlive on the 64-bit lease ID), release.
 */

function projectRoot(): string {
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    const pj = join(dir, "package.json");
    if (existsSync(pj) && JSON.parse(readFileSync(pj, "utf8")).name === "weft") return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

const dist = resolve(process.env.WEFT_DIST || join(projectRoot(), "dist", "bin"));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the lone copy of the executable as `weft` (async: etcd runs in this process's event loop's children). */
async function runWeft(exe: string, args: string[]): Promise<Run> {
  const started = Date.now();
  const r = await spawnAsync(exe, args, {
    cwd: dirname(exe),
    env: { PATH: "/usr/sbin:/sbin", WEFT_MULTICALL_NAME: "weft" },
    timeoutMs: 60_000,
  });
  return { ...r, ms: Date.now() - started };
}

const t = suite("packaged weft talks to etcd");
let work = "";
let exe = "";

t.before(() => {
  const built = join(dist, "weft");
  if (!existsSync(built))
    throw new Error(`${built} does not exist: run \`npm run build\` first (or set WEFT_DIST)`);
  work = mkdtempSync(join(tmpdir(), "weft-etcd-exe-"));
  exe = join(work, "weft");
  copyFileSync(built, exe);
});

t.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

t("etcd-check: config, list, create, watch, renew and release through the packaged store", async () => {
  const etcd = await TestEtcd.start();
  try {
    const prefix = `/weft-test/${uniqueName("x")}/network`;
    await etcd.put(`${prefix}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}');
    await etcd.put(
      `${prefix}/subnets/10.5.7.0-24`,
      '{"PublicIP":"192.168.80.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"6e:1f:5a:9b:27:c0"}}',
      await etcd.grant(3600),
    );
    const r = await runWeft(exe, [
      "etcd-check",
      `--etcd-endpoints=${etcd.endpoint}`,
      `--etcd-prefix=${prefix}`,
      "--lease=10.5.8.0/24",
      "--public-ip=192.168.80.8",
    ]);
    assert.is(r.status, 0, `exit status; stderr: ${r.stderr}`);
    const lines = r.stdout.trim().split("\n");
    assert.equal(
      lines.map((l) => l.replace(/expires \S+/, "expires T")),
      [
        'config: {"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}',
        "leases: 1",
        "lease: 10.5.7.0/24 PublicIP 192.168.80.7 vxlan expires T",
        "created: 10.5.8.0/24 PublicIP 192.168.80.8 weft-check expires T",
        "watched: the lease arrived",
        "renewed: 10.5.8.0/24 PublicIP 192.168.80.8 weft-check expires T",
        "released",
        "watched: the lease left",
        "ok",
      ],
    );
    assert.is(r.stderr, "");
    assert.equal(
      (await etcd.getPrefix(`${prefix}/subnets/`)).map((kv) => kv.key),
      [`${prefix}/subnets/10.5.7.0-24`],
      "released: only the other node's lease is left",
    );
  } finally {
    await etcd.stop();
  }
});

t("etcd-check over TLS with client certificates, and a clear error without them", async () => {
  const etcd = await TestEtcd.start({ tls: true });
  try {
    const files = etcd.tls!;
    const common = [`--etcd-endpoints=${etcd.endpoint}`, "--etcd-prefix=/weft-test/tls", "--timeout=3000"];
    const ok = await runWeft(exe, [
      "etcd-check",
      ...common,
      `--etcd-cafile=${files.ca}`,
      `--etcd-certfile=${files.clientCert}`,
      `--etcd-keyfile=${files.clientKey}`,
      "--lease=10.5.9.0/24",
      "--public-ip=192.168.80.9",
    ]);
    assert.is(ok.status, 0, `stderr: ${ok.stderr}`);
    assert.match(ok.stdout, /watched: the lease left\nok\n$/);
    const refused = await runWeft(exe, ["etcd-check", ...common, `--etcd-cafile=${files.ca}`]);
    assert.is(refused.status, 1);
    assert.match(refused.stderr, `weft etcd-check: etcd ${etcd.endpoint}`);
    assert.ok(refused.ms < 10_000, `took ${refused.ms} ms`);
  } finally {
    await etcd.stop();
  }
});

t("etcd-check against nothing: exits 1 within the deadline, naming the endpoint and the cause", async () => {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const r = await runWeft(exe, ["etcd-check", `--etcd-endpoints=${endpoint}`, "--timeout=2000"]);
  assert.is(r.status, 1);
  assert.is(r.stdout, "");
  assert.match(r.stderr, `weft etcd-check: etcd ${endpoint} unavailable`);
  assert.match(r.stderr, "ECONNREFUSED");
  assert.match(r.stderr, "2000 ms");
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
});

t.run();
