/**
 * Issue 9's "must show" on a real etcd: Debian's etcd-server started in the underlay's hub namespace on
 * 192.168.77.254:2379, where every node reaches it over its eth0 (test/helpers/cluster.ts hubEtcd()),
 * three nodes with the packaged weftd on --store etcd, pods through libcni.
 *
 * - flanneld's layout: `etcdctl get --prefix /coreos.com/network` shows the config and one key per node
 *   with flanneld's JSON, each on an etcd lease with flanneld's TTL; the network config comes from
 *   `<prefix>/config` when no file is given; all of it over TLS with client certificates, and a node
 *   without one (or with one from another CA) is refused with a message that says so;
 * - the suites the file store runs (e2e-suites.ts clusterSuite): vxlan on plain http under another
 *   --etcd-prefix, host-gw over TLS.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Cluster, type ClusterNode, hubEtcd } from "../helpers/cluster.js";
import { until } from "../helpers/weftd.js";
import { clusterSuite } from "./e2e-suites.js";

const PREFIX = "/coreos.com/network";
const CONFIG = '{"Network":"10.246.0.0/16","Backend":{"Type":"vxlan"}}';

const keyOf = (subnet: string) => subnet.replace("/", "-");

async function vtepMac(n: ClusterNode): Promise<string> {
  const [link] = await n.ipJson<Array<{ address: string }>>(["link", "show", "flannel.1"]);
  if (!link) throw new Error(`${n.name}: no flannel.1`);
  return link.address;
}

/** What the node's daemon logged since `from` (a length of its log). */
const logSince = (n: ClusterNode, from: number) => n.log().slice(from);
/** A message as the logger writes it in a line (a JSON string: quotes escaped). */
const inLog = (text: string) => JSON.stringify(text).slice(1, -1);

const s = suite<{ c: Cluster }>(
  "e2e etcd: flanneld's keys and values, the network config from etcd, TLS client certificates",
  {} as { c: Cluster },
);

s.before(async (ctx) => {
  // No net-conf file: every node reads <prefix>/config (flanneld's default prefix, none given).
  ctx.c = await Cluster.create({ nodes: 3, store: hubEtcd({ tls: true, config: CONFIG }) });
  await ctx.c.startAll();
  for (const n of ctx.c.nodes) await n.addPod();
});
s.after(async (ctx) => {
  await ctx.c?.cleanup();
});

s("the network config comes from <prefix>/config when no file is given", async ({ c }) => {
  for (const n of c.nodes) {
    const args = n.daemon!.o.args;
    assert.not.ok(
      args.some((a) => a.startsWith("--net-config-path") || a.startsWith("--etcd-prefix")),
      args.join(" "),
    );
    assert.is(
      n.subnetEnvText(),
      `FLANNEL_NETWORK=10.246.0.0/16\nFLANNEL_SUBNET=${n.subnet().replace(/0\/24$/, "1/24")}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
    );
    assert.ok(n.logged("Created subnet manager: etcd https://192.168.77.254:2379"), n.log());
    assert.ok(n.logged("Found network config - Backend type: vxlan"));
  }
});

s("the nodes' logs hold weftd's lines only (TLS to an etcd at an IP address included)", async ({ c }) => {
  for (const n of c.nodes) {
    const stray = n
      .log()
      .split("\n")
      .filter((l) => l !== "" && !/^\d{4}-\d\d-\d\dT[\d:.]+Z (debug|info|warn|error) weftd "/.test(l));
    assert.equal(stray, [], `${n.name}'s log`);
  }
});

s("etcdctl get --prefix shows flanneld's keys and lease values", async ({ c }) => {
  const subnets = await Promise.all(
    c.nodes.map(async (n) => [
      `${PREFIX}/subnets/${keyOf(n.subnet())}`,
      `{"PublicIP":"${n.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${await vtepMac(n)}"}}`,
    ]),
  );
  subnets.sort(([a], [b]) => (a! < b! ? -1 : 1));
  const want = [[`${PREFIX}/config`, CONFIG], ...subnets].flat().join("\n");
  assert.is((await c.etcd.etcdctl(["get", "--prefix", PREFIX])).trim(), want);
});

s("each lease is on an etcd lease of its own with flanneld's TTL (24 h)", async ({ c }) => {
  const kvs = (await c.etcd.getPrefix(`${PREFIX}/subnets/`)).map((kv) => kv.lease);
  assert.is(kvs.length, 3);
  assert.is(new Set(kvs).size, 3, "one etcd lease per key");
  for (const id of kvs) {
    assert.is.not(id, "0", "not a reservation");
    const hex = BigInt(id).toString(16);
    const out = await c.etcd.etcdctl(["lease", "timetolive", hex]);
    const m = /granted with TTL\((\d+)s\), remaining\((\d+)s\)/.exec(out);
    assert.ok(m, out);
    assert.is(Number(m![1]), 86400, out);
    assert.ok(Number(m![2]) > 86000, out);
  }
});

s("every pod pings every pod on the other nodes", async ({ c }) => {
  assert.equal(await c.unreachablePairs(), []);
});

s(
  "a node without a client certificate, or with one from another CA, is refused with a message that says so; with its certificate it joins",
  async ({ c }) => {
    const tls = c.etcd.tls!;
    const j = c.addNode();
    const refused = `etcd ${c.etcd.endpoint} unavailable`;
    const hint =
      "(etcd refused this client's certificate: check --etcd-certfile/--etcd-keyfile and that etcd trusts their CA)";
    for (const args of [
      ["--etcd-certfile=", "--etcd-keyfile="],
      [`--etcd-certfile=${tls.strangerCert}`, `--etcd-keyfile=${tls.strangerKey}`],
    ]) {
      const from = j.log().length;
      j.start({ args });
      await until(`the refusal logged (${args.join(" ")})`, () => logSince(j, from).includes(inLog(hint)));
      const line = logSince(j, from)
        .split("\n")
        .find((l) => l.includes(inLog(hint)))!;
      assert.match(line, `error weftd "Couldn't fetch network config: ${refused} (read of ${PREFIX}/config`);
      assert.match(line, / \(retrying\)"$/);
      const r = await j.readyz();
      assert.is(r.status, 503);
      assert.match(r.body, "weftd is not ready: not ready yet: reading the network config: ");
      assert.match(r.body, hint);
      assert.ok(j.running, "it keeps trying");
      assert.is(j.subnetEnvText(), undefined);
      assert.not.ok(await j.lease(), "no lease");
      assert.is(await j.stop(), 0);
    }
    j.start();
    await j.ready();
    const pod = await j.addPod();
    for (const n of c.nodes.filter((n) => n !== j))
      await until(`${n.name} routes to ${j.name}`, async () =>
        (await n.ipLines(["route", "show", "proto", "87"])).some((l) => l.startsWith(`${j.subnet()} `)),
      );
    assert.equal(await c.unreachablePairs(), []);
    assert.ok(pod.ip.startsWith("10.246."));
  },
);

s.run();

clusterSuite("vxlan", hubEtcd({ prefix: "/weft-e2e/network" }));
clusterSuite("host-gw", hubEtcd({ tls: true }));
