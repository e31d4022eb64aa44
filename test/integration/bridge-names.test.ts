import { execFileSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, type TestNetns } from "../helpers/netns.js";
import { type BridgeHarness, hostJson, type Outcome, subnet, withHarness } from "./bridge-harness.js";

/**
 * Names the kernel accepts but ip's batch reader treats specially (it has no escapes, takes "#" as a
 * comment even inside quotes, and ends a quoted word at the next quote): a name ip can carry is created
 * and removed under exactly that name; one it cannot is refused before anything is done, with a CNI error
 * that says why. DEL names links as arguments, never in a batch line, so it removes them all.
 */

assertRoot();
const FILE = 5;
const net = (n: number) => subnet(FILE, n);

function podLinks(pod: TestNetns): string[] {
  return pod.ipJson<Array<{ ifname: string }>>(["link", "show"]).map((l) => l.ifname);
}

function assertNothingLeft(h: BridgeHarness, pod: TestNetns): void {
  assert.equal(podLinks(pod), ["lo"], "nothing in the pod");
  assert.equal(h.ports(), [], "no port on the bridge");
  assert.equal(h.reservations(), [], "no reservation");
}

function assertRefused(r: Outcome, code: number, msg: RegExp): void {
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, code, r.stdout);
  assert.match(String(r.json?.msg), msg);
  assert.not.match(r.stdout + r.stderr, /ip exited with|Unterminated|Command failed/);
}

/** ADD, CHECK and DEL of a pod whose interface has an awkward name. */
function roundTrip(h: BridgeHarness, ifname: string, n: number): void {
  const pod = h.pod();
  const conf = h.conf({ subnets: [net(n)] });
  const call = { netns: pod.path, containerId: `names-${n}`, ifname };
  const r = h.weft("ADD", call, conf);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const ifs = r.json!.interfaces as Array<{ name: string; mac?: string }>;
  assert.is(ifs[2]!.name, ifname);
  const link = pod.ipJson<Array<{ ifname: string; address: string; addr_info: Array<{ local: string }> }>>([
    "addr",
    "show",
  ]);
  const made = link.find((l) => l.ifname !== "lo")!;
  assert.is(made.ifname, ifname, "the pod's link has exactly the name asked for");
  assert.is(made.address, ifs[2]!.mac);
  assert.is(made.addr_info.find((a) => !a.local.includes(":"))?.local, `${net(n).replace(/\.0\/24$/, "")}.2`);
  const check = h.weft("CHECK", call, { ...conf, prevResult: r.json });
  assert.is(check.status, 0, check.stdout + check.stderr);
  const d = h.weft("DEL", call, conf);
  assert.is(d.status, 0, d.stdout + d.stderr);
  assertNothingLeft(h, pod);
}

test(
  "ifname e\\th: created, reported, checked and deleted under exactly that name",
  withHarness((h) => roundTrip(h, "e\\th", 0)),
);

test(
  'ifnames with quotes ip can carry: a"b (bare) and "ab (in single quotes), e\\ (trailing backslash)',
  withHarness((h) => {
    roundTrip(h, 'a"b', 1);
    roundTrip(h, '"ab', 2);
    roundTrip(h, "e\\", 3);
  }),
);

test(
  "ifname with #: refused before IPAM with a CNI error naming the reason; nothing left",
  withHarness((h) => {
    const pod = h.pod();
    const r = h.weft(
      "ADD",
      { netns: pod.path, containerId: "names-hash", ifname: "a#b" },
      h.conf({ subnets: [net(4)] }),
    );
    assertRefused(r, 4, /^interface name "a#b" cannot be used: .*"#"/);
    assert.match(String(r.json?.details), /CNI_IFNAME/);
    assertNothingLeft(h, pod);
    assert.not.ok(
      hostJson<unknown[]>(["link", "show", "type", "bridge"]).some(
        (l) => (l as { ifname: string }).ifname === h.bridge,
      ),
    );
  }),
);

test(
  "ifname that starts with a quote and holds the other one: refused; nothing left",
  withHarness((h) => {
    const pod = h.pod();
    const r = h.weft(
      "ADD",
      { netns: pod.path, containerId: "names-q", ifname: `"a'` },
      h.conf({ subnets: [net(4)] }),
    );
    assertRefused(r, 4, /^interface name "\\"a'" cannot be used: .*both ' and "/);
    assertNothingLeft(h, pod);
  }),
);

test(
  "bridge name with #: refused (invalid config) before anything is done; with a quote: works",
  withHarness((h) => {
    const pod = h.pod();
    const hashed = `${h.bridge.slice(0, 10)}#x`;
    const r = h.weft(
      "ADD",
      { netns: pod.path, containerId: "names-br", ifname: "eth0" },
      { ...h.conf({ subnets: [net(5)] }), bridge: hashed },
    );
    assertRefused(r, 7, /^bridge name ".*#x" cannot be used: .*"#"/);
    assertNothingLeft(h, pod);

    const quoted = `"${uniqueName("wq")}`;
    h.ownLink(quoted);
    const conf = { ...h.conf({ subnets: [net(5)] }), bridge: quoted };
    const call = { netns: pod.path, containerId: "names-br", ifname: "eth0" };
    const ok = h.weft("ADD", call, conf);
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    const br = hostJson<Array<{ ifname: string; address: string }>>(["link", "show", "dev", quoted])[0]!;
    assert.is((ok.json!.interfaces as Array<{ mac: string }>)[0]!.mac, br.address);
    assert.is(h.weft("CHECK", call, { ...conf, prevResult: ok.json }).status, 0);
    assert.is(h.weft("DEL", call, conf).status, 0);
    assert.equal(podLinks(pod), ["lo"]);
    assert.equal(hostJson<unknown[]>(["link", "show", "master", quoted]), []);
  }),
);

test(
  "netns path with #: refused before anything is done",
  withHarness((h) => {
    const r = h.weft(
      "ADD",
      { netns: `/var/run/netns/${uniqueName("wn")}#1`, containerId: "names-ns", ifname: "eth0" },
      h.conf({ subnets: [net(4)] }),
    );
    assertRefused(r, 4, /^netns path ".*#1" cannot be used: .*"#"/);
    assert.equal(h.reservations(), []);
  }),
);

test(
  "DEL removes a pod interface named with # (made by the reference plugin): DEL never refuses a name",
  withHarness((h) => {
    const pod = h.pod();
    const conf = h.conf({ subnets: [net(4)] });
    const call = { netns: pod.path, containerId: "names-ref", ifname: "r#1" };
    const r = h.ref("ADD", call, conf);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.equal(podLinks(pod).sort(), ["lo", "r#1"]);
    const d = h.weft("DEL", call, conf);
    assert.is(d.status, 0, d.stdout + d.stderr);
    assertNothingLeft(h, pod);
    execFileSync("ip", ["link", "show", "dev", h.bridge], { stdio: "ignore" });
  }),
);

test.run();
