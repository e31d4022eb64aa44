/**
 * Quiet when healthy: runtimes copy a plugin's stderr into their logs, and operators read any line there
 * as a problem (the reference plugins print nothing). Every verb of the flannel list on a healthy node,
 * through libcni, with a fresh bridge, an existing one and the first pod on a bridge whose last pod left
 * (the kernel then resets the bridge's MTU to 1500, which weft sets back without a warning), with and
 * without portmap: nothing on stderr.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type CnitoolRun, cnitool } from "../helpers/cnitool.js";
import { assertRoot } from "../helpers/netns.js";
import { delegateSets, type Pod, PodPath } from "../helpers/podpath.js";

// weft's delegates only: the reference's (v1.1.1) know no GC, and its portmap CHECK fails on this host.
const sets = (await delegateSets()).filter((d) => d === "weft");

function quiet(what: string, r: CnitoolRun): void {
  assert.is(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  assert.is(r.stderr, "", `${what} printed on stderr`);
}

for (const set of sets) {
  for (const withPortmap of [true, false]) {
    const s = suite(`flannel list [${set} delegates] ${withPortmap ? "with" : "without"} portmap: quiet`);
    let pp: PodPath;
    s.before(async () => {
      assertRoot();
      pp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, withoutPortmap: !withPortmap });
    });
    s.after(() => pp?.cleanup());

    s("ADD (fresh and existing bridge), CHECK, DEL, ADD on the emptied bridge, GC, STATUS", () => {
      const ports = (n: number) =>
        withPortmap
          ? {
              capArgs: {
                portMappings: [
                  { hostPort: 20000 + (process.pid % 20000) + n, containerPort: 80, protocol: "tcp" },
                ],
              },
            }
          : {};
      const [a, b, c] = [pp.pod(), pp.pod(), pp.pod()];
      quiet("ADD on a fresh bridge", pp.add(a, ports(0)));
      quiet("ADD on the existing bridge", pp.add(b, ports(1)));
      quiet("CHECK", pp.check(a, ports(0)));
      quiet("DEL", pp.del(a, ports(0)));
      quiet("DEL of the last pod", pp.del(b, ports(1)));
      assert.equal(pp.bridgePorts(), []);
      quiet("ADD on the emptied bridge", pp.add(c, ports(2)));
      quiet("CHECK", pp.check(c, ports(2)));
      pp.setCniVersion("1.1.0");
      const valid = [{ containerID: c.containerId, ifname: c.ifname }];
      quiet("GC", cnitool("gc", pp.netName, undefined, pp.toolOptions({ validAttachments: valid })));
      quiet("STATUS", cnitool("status", pp.netName, undefined, pp.toolOptions()));
      pp.setCniVersion("1.0.0");
      quiet("DEL", pp.del(c, ports(2)));
      quiet("DEL again", pp.del(c, ports(2)));
    });

    s.run();
  }

  const f = suite(`flannel list [${set} delegates] dual-stack, masquerade, spoof check, tcp+udp: quiet`);
  let pp: PodPath;
  f.before(async () => {
    assertRoot();
    pp = await PodPath.create({
      cniVersion: "1.0.0",
      delegates: set,
      dualStack: true,
      ipMasq: false,
      edit: (l) => {
        const flannel = l.plugins.find((p) => p.type === "flannel")!;
        flannel.delegate = { ...(flannel.delegate as object), macspoofchk: true };
      },
    });
  });
  f.after(() => pp?.cleanup());

  f("every verb, twice over", () => {
    const base = 20000 + (process.pid % 20000);
    const capArgs = (n: number) => ({
      portMappings: [
        { hostPort: base + n, containerPort: 80, protocol: "tcp" },
        { hostPort: base + n, containerPort: 53, protocol: "udp" },
        { hostPort: base + 10 + n, containerPort: 81, protocol: "tcp", hostIP: "127.0.0.1" },
      ],
    });
    for (const round of [0, 1]) {
      const [a, b] = [pp.pod(), pp.pod()];
      quiet(`ADD (round ${round})`, pp.add(a, { capArgs: capArgs(0) }));
      quiet("ADD", pp.add(b, { capArgs: capArgs(1) }));
      quiet("CHECK", pp.check(a, { capArgs: capArgs(0) }));
      quiet("DEL", pp.del(a, { capArgs: capArgs(0) }));
      quiet("DEL again", pp.del(a, { capArgs: capArgs(0) }));
      pp.setCniVersion("1.1.0");
      const valid = [{ containerID: b.containerId, ifname: b.ifname }];
      quiet("GC", cnitool("gc", pp.netName, undefined, pp.toolOptions({ validAttachments: valid })));
      quiet("STATUS", cnitool("status", pp.netName, undefined, pp.toolOptions()));
      pp.setCniVersion("1.0.0");
      // Runtimes tear a sandbox down after its namespace is gone, and DEL what never was added.
      b.netns.delete();
      quiet("DEL of the last pod, its netns gone", pp.del(b, { capArgs: capArgs(1) }));
      const never = pp.pod();
      quiet("DEL of a pod never added", pp.del(never, { capArgs: capArgs(2) }));
    }
  });

  f.run();

  const m = suite(`flannel list [${set} delegates] FLANNEL_MTU changed with pods attached`);
  let mp: PodPath;
  m.before(async () => {
    assertRoot();
    mp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, withoutPortmap: true });
  });
  m.after(() => mp?.cleanup());

  const setMtu = (mtu: number) => {
    const env = readFileSync(mp.subnetEnvFile, "utf8");
    writeFileSync(mp.subnetEnvFile, env.replace(/FLANNEL_MTU=\d+/, `FLANNEL_MTU=${mtu}`));
  };
  const bridgeMtu = () =>
    JSON.parse(execFileSync("ip", ["-j", "link", "show", "dev", mp.bridge], { encoding: "utf8" }))[0].mtu;
  const pods: Pod[] = [];

  m("lowered: set at once, with one warning naming the pods attached with the old MTU", () => {
    pods.push(mp.pod(), mp.pod(), mp.pod());
    quiet("ADD", mp.add(pods[0]!));
    setMtu(1400);
    const r = mp.add(pods[1]!);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /warn bridge .*bridge MTU differs .* from=1450 to=1400 ports="veth[0-9a-f]{8}=1450"/,
    );
    assert.is(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.is(bridgeMtu(), 1400);
    quiet("ADD once the bridge has the new MTU", mp.add(pods[2]!));
  });

  m("raised: kept while pods with the smaller MTU are attached (warned), then set quietly", () => {
    setMtu(1450);
    const d = mp.pod();
    const r = mp.add(d);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /warn bridge .*bridge MTU stays below the configured one .* from=1400 to=1450/);
    assert.is(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.is(bridgeMtu(), 1400, "not raised above the old pods' MTU");
    quiet("DEL", mp.del(pods[1]!));
    quiet("DEL", mp.del(pods[2]!));
    quiet("ADD with only pods of the configured MTU attached", mp.add(mp.pod()));
    assert.is(bridgeMtu(), 1450);
  });

  m.run();
}
