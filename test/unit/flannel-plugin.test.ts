/**
 * The flannel executable's verbs, run as a runtime runs them (env + stdin, compiled multi-call entry),
 * against a recording stand-in delegate: a shell script in CNI_PATH that keeps every call's verb and
 * stdin and fails a verb on request. No kernel objects: the real bridge/host-local chain is covered by
 * test/integration/flannel*.test.ts.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { pluginRunOf } from "../helpers/plugin.js";

const MULTICALL = fileURLToPath(new URL("../../cli/multicall.js", import.meta.url));
const V4 =
  "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
const RESULT = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "cni0" }, { name: "veth1" }, { name: "eth0", sandbox: "/var/run/netns/x" }],
  ips: [{ interface: 2, address: "10.1.17.2/24", gateway: "10.1.17.1" }],
  routes: [{ dst: "10.1.0.0/16" }],
};

interface Call {
  verb: string;
  stdin: string;
}

class Fixture {
  readonly root = mkdtempSync(join(tmpdir(), "weft-flannel-unit-"));
  readonly bin = join(this.root, "bin");
  readonly calls = join(this.root, "calls");
  readonly dataDir = join(this.root, "flannel");
  readonly subnetFile = join(this.root, "subnet.env");

  constructor() {
    mkdirSync(this.bin);
    mkdirSync(this.calls);
    writeFileSync(this.subnetFile, V4);
    writeFileSync(join(this.root, "result.json"), JSON.stringify(RESULT));
    const script = [
      "#!/bin/sh",
      `d='${this.root}'`,
      'n=$(ls "$d/calls" | wc -l)',
      'cat > "$d/calls/$(printf %03d "$n")-$CNI_COMMAND"',
      'f="$d/fail-$CNI_COMMAND"',
      'if [ -s "$f" ]; then cat "$f"; exit 1; fi',
      'if [ -e "$f" ]; then printf \'{"code":11,"msg":"injected %s failure"}\' "$CNI_COMMAND"; exit 1; fi',
      'if [ "$CNI_COMMAND" = ADD ]; then cat "$d/result.json"; fi',
      "exit 0",
    ].join("\n");
    for (const name of ["bridge", "host-local"]) {
      writeFileSync(join(this.bin, name), `${script}\n`);
      chmodSync(join(this.bin, name), 0o755);
    }
  }

  conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: "1.0.0",
      name: "cbr0",
      type: "flannel",
      subnetFile: this.subnetFile,
      dataDir: this.dataDir,
      delegate: { hairpinMode: true, isDefaultGateway: true },
      ...extra,
    };
  }

  run(verb: string, conf: Record<string, unknown>, containerId = "ctr1") {
    const r = spawnSync(process.execPath, [MULTICALL], {
      argv0: "flannel",
      input: JSON.stringify(conf),
      encoding: "utf8",
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: verb,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: "/var/run/netns/x",
        CNI_IFNAME: "eth0",
        CNI_PATH: this.bin,
      },
    });
    return pluginRunOf(r);
  }

  /** The delegate's calls so far, oldest first. */
  delegateCalls(): Call[] {
    return readdirSync(this.calls)
      .sort()
      .map((f) => ({ verb: f.slice(4), stdin: readFileSync(join(this.calls, f), "utf8") }));
  }

  /** Makes the delegate fail `verb`: code 11 ("injected <verb> failure"), or with `error` as its answer. */
  failDelegate(verb: string, fail = true, error?: { code: number; msg: string }): void {
    const f = join(this.root, `fail-${verb}`);
    if (fail) writeFileSync(f, error ? JSON.stringify(error) : "");
    else rmSync(f, { force: true });
  }

  saved(cid = "ctr1"): string | undefined {
    const p = join(this.dataDir, cid);
    return existsSync(p) ? readFileSync(p, "utf8") : undefined;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

function withFixture(name: string, fn: (f: Fixture) => void): void {
  test(name, () => {
    const f = new Fixture();
    try {
      fn(f);
    } finally {
      f.cleanup();
    }
  });
}

const KUBE_FLANNEL_1_0_0 =
  '{"cniVersion":"1.0.0","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1472,"name":"cbr0","type":"bridge"}';

withFixture("ADD saves the delegate config (0600 in 0700) and sends the delegate those exact bytes", (f) => {
  const r = f.run("ADD", f.conf());
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(f.saved(), KUBE_FLANNEL_1_0_0);
  assert.is(statSync(join(f.dataDir, "ctr1")).mode & 0o777, 0o600);
  assert.is(statSync(f.dataDir).mode & 0o777, 0o700);
  assert.equal(f.delegateCalls(), [{ verb: "ADD", stdin: KUBE_FLANNEL_1_0_0 }]);
  assert.equal(readdirSync(f.dataDir), ["ctr1"], "no temp file left");
  // The delegate's result comes back in the config's version.
  assert.equal(r.json, { ...RESULT });
});

withFixture("ADD without subnet.env: the reference's message, nothing saved, no delegate call", (f) => {
  rmSync(f.subnetFile);
  const r = f.run("ADD", f.conf());
  assert.is(r.status, 1);
  assert.equal(r.json, {
    cniVersion: "1.0.0",
    code: 999,
    msg: `failed to load flannel 'subnet.env' file: open ${f.subnetFile}: no such file or directory. Check the flannel pod log for this node.`,
  });
  assert.is(f.saved(), undefined);
  assert.equal(f.delegateCalls(), []);
});

withFixture("ADD with an invalid delegate template: error, nothing saved", (f) => {
  const r = f.run("ADD", f.conf({ delegate: { name: "x" } }));
  assert.is(r.status, 1);
  assert.is(r.json?.msg, "'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  assert.not.ok(existsSync(f.dataDir));
  assert.equal(f.delegateCalls(), []);
});

withFixture(
  "ADD with the IPAM plugin not installed: the reference's error, nothing saved or started",
  (f) => {
    rmSync(join(f.bin, "host-local"));
    const r = f.run("ADD", f.conf());
    assert.is(r.status, 1);
    assert.is(r.json?.msg, `failed to delegate add: failed to find plugin "host-local" in path [${f.bin}]`);
    assert.not.ok(existsSync(f.dataDir));
    assert.equal(f.delegateCalls(), []);
  },
);

withFixture("failed delegate ADD: DEL with the same config, then no saved file", (f) => {
  f.failDelegate("ADD");
  const r = f.run("ADD", f.conf());
  assert.is(r.status, 1);
  assert.equal(r.json, {
    cniVersion: "1.0.0",
    code: 11,
    msg: "failed to delegate add: injected ADD failure",
  });
  assert.equal(
    f.delegateCalls().map((c) => [c.verb, c.stdin]),
    [
      ["ADD", KUBE_FLANNEL_1_0_0],
      ["DEL", KUBE_FLANNEL_1_0_0],
    ],
  );
  assert.is(f.saved(), undefined);
});

withFixture(
  "failed delegate ADD and DEL: the saved file stays for the runtime's DEL, which then cleans up",
  (f) => {
    f.failDelegate("ADD");
    f.failDelegate("DEL");
    assert.is(f.run("ADD", f.conf()).status, 1);
    assert.is(f.saved(), KUBE_FLANNEL_1_0_0);
    f.failDelegate("DEL", false);
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout);
    assert.is(f.saved(), undefined);
    assert.equal(
      f.delegateCalls().map((c) => c.verb),
      ["ADD", "DEL", "DEL"],
    );
  },
);

withFixture(
  "failed delegate ADD whose DEL fails the same way (the delegate refuses the call): no saved file",
  (f) => {
    const refusal = { code: 999, msg: "failed to load netconf: json: cannot unmarshal string" };
    f.failDelegate("ADD", true, refusal);
    f.failDelegate("DEL", true, refusal);
    const add = f.run("ADD", f.conf());
    assert.is(add.json?.msg, `failed to delegate add: ${refusal.msg}`);
    assert.is(f.saved(), undefined);
    assert.match(
      add.stderr,
      /refuses this config for DEL as for ADD; nothing to replay, saved config removed/,
    );
    // The runtime's DEL for the failed sandbox then has nothing to replay.
    assert.is(f.run("DEL", f.conf()).status, 0);
    assert.equal(
      f.delegateCalls().map((c) => c.verb),
      ["ADD", "DEL"],
    );
  },
);

withFixture("failed delegate ADD whose DEL answers a refusal code (4, 7...): no saved file", (f) => {
  f.failDelegate("ADD");
  f.failDelegate("DEL", true, { code: 4, msg: "bad CNI_ARGS" });
  assert.is(f.run("ADD", f.conf()).status, 1);
  assert.is(f.saved(), undefined);
});

withFixture(
  "DEL refused (code 7) with a saved config equal to today's: the file goes, DEL succeeds, one delegate call",
  (f) => {
    assert.is(f.run("ADD", f.conf()).status, 0);
    f.failDelegate("DEL", true, { code: 7, msg: "invalid network config" });
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.is(del.stdout, "");
    assert.is(f.saved(), undefined);
    assert.equal(
      f.delegateCalls().map((c) => c.verb),
      ["ADD", "DEL"],
    );
  },
);

withFixture(
  "DEL refused (code 1) and a different rebuilt config: the rebuilt one goes to the delegate",
  (f) => {
    const old = f.conf({ cniVersion: "0.4.0" });
    assert.is(f.run("ADD", old).status, 0);
    f.failDelegate("DEL", true, { code: 1, msg: "incompatible CNI versions" });
    // The script fails every DEL; the point is which configs it was offered, and that DEL still ends.
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout + del.stderr);
    const dels = f.delegateCalls().filter((c) => c.verb === "DEL");
    assert.equal(
      dels.map((c) => (JSON.parse(c.stdin) as { cniVersion: string }).cniVersion),
      ["0.4.0", "1.0.0"],
    );
    assert.is(f.saved(), undefined);
  },
);

withFixture(
  "DEL refused and no config can be rebuilt (no subnet.env): success, the useless file goes",
  (f) => {
    assert.is(f.run("ADD", f.conf()).status, 0);
    rmSync(f.subnetFile);
    f.failDelegate("DEL", true, { code: 6, msg: "decoding failure" });
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.is(f.saved(), undefined);
  },
);

withFixture(
  "over-long container ID: ADD refuses it naming CNI_CONTAINERID and NAME_MAX before anything; DEL succeeds",
  (f) => {
    const long = "a".repeat(256);
    const add = f.run("ADD", f.conf(), long);
    assert.is(add.status, 1);
    assert.is(add.json?.code, 4);
    assert.is(
      add.json?.msg,
      `CNI_CONTAINERID is too long for a file name (flannel saves the delegate config as ${f.dataDir}/<containerID>): 256 bytes, at most 255`,
    );
    assert.equal(f.delegateCalls(), []);
    assert.not.ok(existsSync(f.dataDir), "not even the data dir");
    assert.is(f.run("DEL", f.conf(), long).status, 0);
    // 255 bytes is a valid file name, and so is the save's temp file.
    const max = "b".repeat(255);
    assert.is(f.run("ADD", f.conf(), max).status, 0);
    assert.equal(readdirSync(f.dataDir), [max]);
    assert.is(f.run("DEL", f.conf(), max).status, 0);
    assert.equal(readdirSync(f.dataDir), []);
  },
);

withFixture(
  "DEL replays the saved bytes, removes the file; a second DEL succeeds without the delegate",
  (f) => {
    assert.is(f.run("ADD", f.conf()).status, 0);
    // DEL needs no subnet.env and ignores today's config: the saved file is the truth.
    rmSync(f.subnetFile);
    const del = f.run("DEL", f.conf({ delegate: { type: "other" }, runtimeConfig: { x: 1 } }));
    assert.is(del.status, 0, del.stdout + del.stderr);
    assert.is(del.stdout, "");
    assert.equal(f.delegateCalls()[1], { verb: "DEL", stdin: KUBE_FLANNEL_1_0_0 });
    assert.is(f.saved(), undefined);
    assert.is(f.run("DEL", f.conf()).status, 0);
    assert.is(f.delegateCalls().length, 2);
  },
);

withFixture(
  "failed delegate DEL: the error is returned and the saved file kept (the reference loses it)",
  (f) => {
    assert.is(f.run("ADD", f.conf()).status, 0);
    f.failDelegate("DEL");
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 1);
    assert.equal(del.json, { cniVersion: "1.0.0", code: 11, msg: "injected DEL failure" });
    assert.is(f.saved(), KUBE_FLANNEL_1_0_0);
  },
);

withFixture(
  "DEL of a corrupt saved file: a config rebuilt from subnet.env still reaches the delegate",
  (f) => {
    mkdirSync(f.dataDir, { mode: 0o700 });
    writeFileSync(join(f.dataDir, "ctr1"), '{"cniVersion":"1.0.0","hairpinMode":tr');
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout);
    assert.equal(f.delegateCalls(), [{ verb: "DEL", stdin: KUBE_FLANNEL_1_0_0 }]);
    assert.is(f.saved(), undefined);
  },
);

withFixture(
  "DEL of a corrupt saved file without subnet.env: success as the reference, file kept for GC",
  (f) => {
    mkdirSync(f.dataDir, { mode: 0o700 });
    writeFileSync(join(f.dataDir, "ctr1"), "");
    rmSync(f.subnetFile);
    const del = f.run("DEL", f.conf());
    assert.is(del.status, 0, del.stdout);
    assert.equal(f.delegateCalls(), []);
    assert.is(f.saved(), "");
  },
);

withFixture(
  "CHECK: the saved config plus prevResult (route gateways filled in) goes to the delegate",
  (f) => {
    assert.is(f.run("ADD", f.conf()).status, 0);
    const check = f.run("CHECK", f.conf({ prevResult: RESULT }));
    assert.is(check.status, 0, check.stdout + check.stderr);
    const sent = JSON.parse(f.delegateCalls()[1]!.stdin) as Record<string, unknown>;
    assert.equal(sent, {
      ...JSON.parse(KUBE_FLANNEL_1_0_0),
      prevResult: { ...RESULT, routes: [{ dst: "10.1.0.0/16", gw: "10.1.17.1" }] },
    });
    f.failDelegate("CHECK");
    assert.is(f.run("CHECK", f.conf({ prevResult: RESULT })).json?.msg, "injected CHECK failure");
  },
);

withFixture("CHECK without a saved config: unknown container (3)", (f) => {
  const check = f.run("CHECK", f.conf({ prevResult: RESULT }));
  assert.is(check.status, 1);
  assert.is(check.json?.code, 3);
});

withFixture("CHECK after the node's subnet moved: fails and says so", (f) => {
  assert.is(f.run("ADD", f.conf()).status, 0);
  writeFileSync(f.subnetFile, V4.replace("10.1.17.1/24", "10.1.99.1/24"));
  const check = f.run("CHECK", f.conf({ prevResult: RESULT }));
  assert.is(check.status, 1);
  assert.match(
    String(check.json?.msg),
    "flannel subnet changed since this pod was added (pod: 10.1.17.0/24, subnet.env: 10.1.99.0/24)",
  );
  assert.is(f.delegateCalls().length, 1, "the delegate is not asked");
});

withFixture(
  "GC: stale saved configs of this network removed, valid and foreign ones kept, GC forwarded",
  (f) => {
    const v110 = f.conf({ cniVersion: "1.1.0" });
    for (const cid of ["keep", "stale1", "stale2"]) assert.is(f.run("ADD", v110, cid).status, 0);
    assert.is(f.run("ADD", { ...v110, name: "othernet" }, "foreign").status, 0);
    writeFileSync(join(f.dataDir, "corrupt"), "{");
    const valid = [{ containerID: "keep", ifname: "eth0" }];
    const gc = f.run("GC", { ...v110, "cni.dev/valid-attachments": valid }, "");
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    assert.equal(readdirSync(f.dataDir).sort(), ["foreign", "keep"]);
    const last = f.delegateCalls().at(-1)!;
    assert.is(last.verb, "GC");
    const sent = JSON.parse(last.stdin) as Record<string, unknown>;
    assert.equal(sent["cni.dev/valid-attachments"], valid);
    assert.is(sent.cniVersion, "1.1.0");
    assert.is(sent.type, "bridge");
    assert.equal((sent.ipam as { ranges: unknown }).ranges, [[{ subnet: "10.1.17.0/24" }]]);
  },
);

withFixture("GC whose delegate GC fails keeps the stale saved configs for a later DEL or GC", (f) => {
  // Found by the fuzz test: a delegate that rejects the config (isDefaultGateway: 31) failed the GC after
  // flannel had dropped the stale pod's saved config, so the runtime's DEL later found nothing to replay
  // and the pod's veth and address stayed.
  const v110 = f.conf({ cniVersion: "1.1.0" });
  for (const cid of ["keep", "stale"]) assert.is(f.run("ADD", v110, cid).status, 0);
  const gcConf = { ...v110, "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }] };
  f.failDelegate("GC");
  const gc = f.run("GC", gcConf, "");
  assert.is(gc.status, 1, gc.stdout + gc.stderr);
  assert.match(String(gc.json?.msg), "injected GC failure");
  assert.equal(readdirSync(f.dataDir).sort(), ["keep", "stale"]);
  f.failDelegate("GC", false);
  const again = f.run("GC", gcConf, "");
  assert.is(again.status, 0, again.stdout + again.stderr);
  assert.equal(readdirSync(f.dataDir), ["keep"]);
});

withFixture("GC with the legacy cni.dev/attachments key", (f) => {
  const v110 = f.conf({ cniVersion: "1.1.0" });
  for (const cid of ["a", "b"]) assert.is(f.run("ADD", v110, cid).status, 0);
  const gc = f.run("GC", { ...v110, "cni.dev/attachments": [{ containerID: "b", ifname: "eth0" }] }, "");
  assert.is(gc.status, 0, gc.stdout);
  assert.equal(readdirSync(f.dataDir), ["b"]);
});

withFixture("GC with both keys keeps the union of the two lists", (f) => {
  const v110 = f.conf({ cniVersion: "1.1.0" });
  for (const cid of ["a", "b", "c"]) assert.is(f.run("ADD", v110, cid).status, 0);
  const gc = f.run(
    "GC",
    {
      ...v110,
      "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }],
      "cni.dev/attachments": [{ containerID: "b", ifname: "eth0" }],
    },
    "",
  );
  assert.is(gc.status, 0, gc.stdout + gc.stderr);
  assert.equal(readdirSync(f.dataDir).sort(), ["a", "b"]);
});

withFixture("GC without either attachments key removes nothing, is not forwarded, and warns", (f) => {
  const v110 = f.conf({ cniVersion: "1.1.0" });
  for (const cid of ["a", "b"]) assert.is(f.run("ADD", v110, cid).status, 0);
  const calls = f.delegateCalls().length;
  const gc = f.run("GC", v110, "");
  assert.is(gc.status, 0, gc.stdout + gc.stderr);
  assert.is(gc.stdout, "");
  assert.equal(readdirSync(f.dataDir).sort(), ["a", "b"]);
  assert.is(f.delegateCalls().length, calls, "the delegate gets no GC");
  assert.match(gc.stderr, /warn .*GC without cni\.dev\/valid-attachments/);
});

withFixture("GC with an empty list removes every saved config of this network", (f) => {
  const v110 = f.conf({ cniVersion: "1.1.0" });
  for (const cid of ["a", "b"]) assert.is(f.run("ADD", v110, cid).status, 0);
  const gc = f.run("GC", { ...v110, "cni.dev/valid-attachments": [] }, "");
  assert.is(gc.status, 0, gc.stdout + gc.stderr);
  assert.equal(readdirSync(f.dataDir), []);
  assert.is(f.delegateCalls().at(-1)?.verb, "GC");
});

withFixture("STATUS: ready only with a valid subnet.env and the delegate and IPAM plugins installed", (f) => {
  const v110 = f.conf({ cniVersion: "1.1.0" });
  assert.is(f.run("STATUS", v110, "").status, 0);
  writeFileSync(f.subnetFile, "FLANNEL_NETWORK=10.1.0.0/16\n");
  let r = f.run("STATUS", v110, "");
  assert.is(r.json?.code, 50);
  assert.match(
    String(r.json?.msg),
    "is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ",
  );
  rmSync(f.subnetFile);
  r = f.run("STATUS", v110, "");
  assert.is(r.json?.code, 50);
  assert.match(String(r.json?.msg), "no such file or directory");
  writeFileSync(f.subnetFile, V4);
  rmSync(join(f.bin, "host-local"));
  r = f.run("STATUS", v110, "");
  assert.is(r.json?.code, 50);
  assert.match(String(r.json?.msg), 'IPAM plugin "host-local" is not installed');
  rmSync(join(f.bin, "bridge"));
  r = f.run("STATUS", v110, "");
  assert.match(String(r.json?.msg), 'delegate plugin "bridge" is not installed');
});

test.run();
