import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { RECORD_DIR } from "../../plugins/portmap/record.js";
import { packagedWeftd } from "../helpers/cluster.js";
import { repoRoot } from "../helpers/cnitool.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot } from "../helpers/netns.js";

/**
 * `npm run demo` as CI runs it (scripts/demo.mjs on the packaged dist/bin): its output says what it
 * showed (every pair of pods connected, the hostPort reached from another node, weft doctor run, the
 * last line), and nothing of the run is left afterwards, whether it ended by itself, was interrupted
 * (SIGINT, SIGTERM) or was kept (--keep) and removed with --cleanup. Every run gets its own tag, the
 * prefix of everything it creates (namespaces <tag>-*, <tmpdir>/weft-demo-<tag>, WEFT_DEMO_RUN=<tag> in
 * the environment of its processes), which is what the leftovers are looked for by.
 */

const DEMO = join(repoRoot(), "scripts", "demo.mjs");

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  lines: string[];
  last: string;
}

/**
 * Runs the demo with `args`; with `interrupt`, sends `signal` once a line of the output matches
 * `interrupt.after`. The deadline only ends a hung run.
 */
function runDemo(
  args: string[],
  interrupt?: { after: RegExp; signal: NodeJS.Signals },
  deadlineMs = 60_000,
): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let sent = false;
    const onData = (d: Buffer) => {
      out += d;
      if (interrupt && !sent && interrupt.after.test(out)) {
        sent = true;
        child.kill(interrupt.signal);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the demo did not end within ${deadlineMs} ms:\n${out}`));
    }, deadlineMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines = out.trimEnd().split("\n");
      resolve({ code, signal, out, lines, last: lines.at(-1) ?? "" });
    });
  });
}

/** Everything of run `tag` still on the machine, one entry per object; [] when nothing is left. */
function leftovers(tag: string): string[] {
  const left: string[] = [];
  const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const line of netns.split("\n")) if (line.startsWith(`${tag}-`)) left.push(`netns ${line}`);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = `\0${readFileSync(`/proc/${entry}/environ`, "latin1")}\0`;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "latin1").replaceAll("\0", " ");
      if (environ.includes(`\0WEFT_DEMO_RUN=${tag}\0`) || cmdline.includes(`weft-demo-${tag}`))
        left.push(`process ${entry}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  for (const name of readdirSync(tmpdir())) if (name.includes(tag)) left.push(`file ${join(tmpdir(), name)}`);
  for (const table of ["nat", "filter", "mangle", "raw"]) {
    const rules = execFileSync("iptables-save", ["-t", table], { encoding: "utf8" });
    for (const l of rules.split("\n")) if (l.includes(tag)) left.push(`host ${table} rule ${l}`);
  }
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
  for (const l of links.split("\n")) if (l.includes(tag)) left.push(`host link ${l}`);
  // portmap's records of the run's pods (plugins/portmap/record.ts), on the host's /run.
  for (const net of existsSync(RECORD_DIR) ? readdirSync(RECORD_DIR) : [])
    for (const f of readdirSync(join(RECORD_DIR, net)))
      if (f.startsWith(`${tag}-`)) left.push(`portmap record ${join(RECORD_DIR, net, f)}`);
  return left;
}

/** A tag for one run: [a-z0-9], unique to this test process. */
const newTag = () => uniqueName("dm");

/** What a successful run printed, checked against the demo's promises. */
function assertShown(r: DemoRun, nodes: number, backend: string, store: string): void {
  const pods = nodes * 2;
  const pairs = pods * (pods - 1);
  const last = new RegExp(
    `^demo: all ${pairs} pairs connected \\(${nodes} nodes, ${pods} pods, ${backend}, ${store} store, [\\d.]+ s\\)$`,
  );
  assert.match(r.last, last, r.out);
  assert.is(r.code, 0, r.out);
  // The nodes with their subnets and the backend.
  for (let i = 1; i <= nodes; i++)
    assert.match(
      r.out,
      new RegExp(`node${i} {2}192\\.168\\.77\\.${i} {2}subnet 10\\.244\\.\\d+\\.0/24 {2}${backend}:`),
    );
  // The pods with their addresses.
  const podLines = r.lines.filter((l) => /^ {4}node\d+\/[ab] +10\.244\.\d+\.\d+\/24 /.test(l));
  assert.is(podLines.length, pods, r.out);
  // The matrix: one row per pod, a latency in every cell but the diagonal.
  const rows = r.lines.filter((l) => /^ {4}n\d+[ab] /.test(l));
  assert.is(rows.length, pods, r.out);
  for (const row of rows) {
    const cells = row.trim().split(/\s+/).slice(1);
    assert.is(cells.length, pods, row);
    assert.is(cells.filter((c) => c === "-").length, 1, row);
    assert.is(cells.filter((c) => /^\d+\.\d\d$/.test(c)).length, pods - 1, row);
  }
  assert.match(r.out, `ok   ${pairs} of ${pairs} pairs answered`);
  // Every node's weftd served its pods' plugin calls (flannel and portmap ADD for two pods: 4 at least).
  const served = /served by each node's weftd on its CNI socket: (.*) \(weftd_cni_calls_total\)/.exec(r.out);
  assert.ok(served, r.out);
  for (const m of served![1]!.matchAll(/node\d+ (\d+)/g)) assert.ok(Number(m[1]) >= 4, served![0]);
  // The hostPort from another node and from a pod there.
  assert.match(r.out, "ok   hostPort node2 -> 192.168.77.1:30080: hello from node1/a");
  assert.match(r.out, "ok   hostPort node2/a (pod) -> 192.168.77.1:30080: hello from node1/a");
  // weft doctor ran on node1 and found nothing wrong.
  assert.match(r.out, "==> weft doctor on node1");
  assert.match(r.out, "ok   doctor: no problem", r.out);
  // The runtime's DELs left no reservation or saved config.
  assert.match(r.out, `ok   ${pods} pods deleted; reservations and saved configs left: none`);
  assert.not.match(r.out, "FAIL");
}

const t = suite("demo");

t.before(() => {
  assertRoot();
  packagedWeftd(); // the demo runs the packaged executables: fail at once when they are not built
});

t(
  "vxlan, 3 nodes, file store: every pair connects, the hostPort answers, doctor runs; nothing left",
  async () => {
    const tag = newTag();
    const r = await runDemo(["--tag", tag]);
    try {
      assertShown(r, 3, "vxlan", "file");
      assert.match(r.out, "==> Clean up");
    } finally {
      assert.equal(leftovers(tag), []);
    }
  },
);

t("host-gw, 2 nodes, etcd in the underlay: the same; nothing left (etcd gone too)", async () => {
  const tag = newTag();
  const r = await runDemo(["--tag", tag, "--backend", "host-gw", "--nodes", "2", "--store", "etcd"]);
  try {
    assertShown(r, 2, "host-gw", "etcd");
    assert.match(r.out, "etcd at http://192.168.77.254:2379");
    assert.match(r.out, /10\.244\.\d+\.0\/24 via 192\.168\.77\.2 dev eth0/);
  } finally {
    assert.equal(leftovers(tag), []);
  }
});

t(
  "SIGINT while the pods are being added: everything removed, status 130, the last line says so",
  async () => {
    const tag = newTag();
    const r = await runDemo(["--tag", tag], { after: /==> Pods: /, signal: "SIGINT" });
    assert.is(r.code, 130, r.out);
    assert.match(r.out, "demo: SIGINT: stopping and cleaning up");
    assert.match(r.out, /removed \d+ processes of the run/);
    assert.match(r.out, /removed \d+ network namespaces/);
    assert.match(
      r.last,
      /^demo: FAILED: interrupted by SIGINT, everything removed \(3 nodes, \d pods, vxlan/,
    );
    assert.equal(leftovers(tag), []);
  },
);

t("SIGTERM while the daemons start (etcd running): everything removed", async () => {
  const tag = newTag();
  const r = await runDemo(["--tag", tag, "--store", "etcd", "--nodes", "2"], {
    after: /==> weftd on each node/,
    signal: "SIGTERM",
  });
  assert.is(r.code, 130, r.out);
  assert.match(r.last, /^demo: FAILED: interrupted by SIGTERM, everything removed/);
  assert.equal(leftovers(tag), []);
});

t("--keep leaves the cluster running and says how to clean up; --cleanup TAG removes it all", async () => {
  const tag = newTag();
  try {
    const r = await runDemo(["--tag", tag, "--nodes", "2", "--keep"]);
    assert.is(r.code, 0, r.out);
    assert.match(r.last, /^demo: all 12 pairs connected/);
    assert.match(r.out, `node ${DEMO} --cleanup ${tag}`);
    assert.not.match(r.out, /==> Clean up$/m);
    // Still running: the daemons answer, and a pod on node1 reaches one on node2.
    const ready = execFileSync(
      "ip",
      ["netns", "exec", `${tag}-node1`, "socat", "-T", "2", "-", "TCP:127.0.0.1:9100"],
      { encoding: "utf8", input: "GET /readyz HTTP/1.0\r\n\r\n" },
    );
    assert.match(ready, /^HTTP\/1\.1 200/);
    const target = /node2\/b +(10\.244\.\d+\.\d+)\//.exec(r.out)?.[1];
    assert.ok(target, r.out);
    execFileSync("ip", ["netns", "exec", `${tag}-node1-a`, "ping", "-c1", "-W2", target!]);
    assert.ok(existsSync(join(tmpdir(), `weft-demo-${tag}`)));
    const c = execFileSync(process.execPath, [DEMO, "--cleanup", tag], { encoding: "utf8" });
    assert.match(c, new RegExp(`^demo: removed run ${tag}: \\d+ processes of the run`));
    assert.equal(leftovers(tag), []);
    // Idempotent.
    const again = execFileSync(process.execPath, [DEMO, "--cleanup", tag], { encoding: "utf8" });
    assert.is(again.trim(), `demo: nothing left of run ${tag}`);
  } finally {
    execFileSync(process.execPath, [DEMO, "--cleanup", tag], { stdio: "ignore" });
  }
});

t("bad flags: status 2, naming the flag and the allowed values", async () => {
  for (const [args, want] of [
    [["--backend", "udp"], '--backend: unsupported value "udp"; allowed values: vxlan, host-gw'],
    [["--nodes", "1"], '--nodes: invalid value "1"; allowed values: 2..10'],
    [["--store", "consul"], '--store: unsupported value "consul"; allowed values: file, etcd'],
    [["--tag", "Bad-Tag"], 'invalid tag "Bad-Tag"'],
    [["--frobnicate"], "Unknown option '--frobnicate'"],
  ] as const) {
    const r = await runDemo([...args]);
    assert.is(r.code, 2, r.out);
    assert.match(r.out, want);
    assert.match(r.out, "usage: node scripts/demo.mjs");
  }
});

t.run();
