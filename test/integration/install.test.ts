/**
 * `weft install` and `weft uninstall` with the packaged executable (npm run build first), into temporary
 * directories: what lands where (one copy, hard links, the embedded conflist, the manifest), the
 * footprint, idempotence, --dry-run, refusing and replacing foreign plugins, --restore, leaving the
 * directories as they were, atomic replacement under a runtime that keeps executing the plugin, and
 * --purge of a node's state in the node's network namespace.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { placeLink } from "../../cli/install/place.js";
import { ensureFlannelRules } from "../../daemon/rules.js";
import { RECORD_DIR, recordsOf } from "../../plugins/portmap/record.js";
import { cnitool, repoRoot } from "../helpers/cnitool.js";
import { footprint, listing, runWeft, weftExe, weftOk } from "../helpers/install.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { multicallJs, REFERENCE_DIR } from "../helpers/podpath.js";

const NAMES = ["weft", "flannel", "bridge", "host-local", "portmap", "weftd"];
const MiB = 2 ** 20;

const Install = suite("weft install");
let root = "";
let bin = "";
let conf = "";

Install.before(() => {
  assertRoot();
  if (!existsSync(weftExe())) throw new Error(`${weftExe()} is missing: npm run build first`);
});
Install.before.each(() => {
  root = mkdtempSync(join(tmpdir(), "weft-install-"));
  bin = join(root, "opt", "cni", "bin");
  conf = join(root, "etc", "cni", "net.d");
});
Install.after.each(() => {
  rmSync(root, { recursive: true, force: true });
});

const dirs = () => ["--bin-dir", bin, "--conf-dir", conf];

Install(
  "a fresh node: one copy, five hard links, the kube-flannel list, the manifest; each change on one line",
  () => {
    const r = weftOk(["install", ...dirs()]);
    assert.equal(r.lines, [
      `created directory ${bin}`,
      `created directory ${conf}`,
      `installed ${bin}/weft (a copy of ${weftExe()}, ${(statSync(weftExe()).size / MiB).toFixed(0)} MiB)`,
      ...NAMES.slice(1).map((n) => `linked ${bin}/${n} -> weft`),
      `wrote ${conf}/10-flannel.conflist`,
      `recorded what was installed in ${bin}/.weft-install.json`,
    ]);
    const ino = statSync(join(bin, "weft")).ino;
    for (const n of NAMES) assert.is(statSync(join(bin, n)).ino, ino, `${n} is the same inode`);
    assert.is(statSync(join(bin, "weft")).nlink, NAMES.length);
    assert.is(statSync(join(bin, "weft")).mode & 0o777, 0o755);
    assert.ok(
      readFileSync(join(bin, "weft")).equals(readFileSync(weftExe())),
      "the copy has the source's bytes",
    );
    // The embedded list is the repository's kube-flannel list, byte for byte.
    assert.is(
      readFileSync(join(conf, "10-flannel.conflist"), "utf8"),
      readFileSync(join(repoRoot(), "conflists", "10-flannel.conflist"), "utf8"),
    );
    assert.equal(readdirSync(bin).sort(), [".weft-install.json", ...NAMES].sort(), "no temp file left");
    assert.equal(readdirSync(conf), ["10-flannel.conflist"]);
    // Each name answers as its plugin from the installed copy.
    const v = spawnSync(join(bin, "host-local"), [], { env: { CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    assert.is(v.status, 0, v.stderr);
    assert.ok(JSON.parse(v.stdout).supportedVersions.includes("1.1.0"));
  },
);

Install("footprint: one runtime, at most 150 MiB in the bin dir (hard links counted once)", () => {
  weftOk(["install", ...dirs()]);
  const bytes = footprint(bin);
  assert.ok(bytes <= 150 * MiB, `${(bytes / MiB).toFixed(1)} MiB installed`);
  assert.ok(bytes < 2 * statSync(weftExe()).size, "one copy of the executable");
});

Install("idempotent: a second run changes nothing and says so (inodes and mtimes unchanged)", () => {
  weftOk(["install", ...dirs()]);
  const before = [...listing(bin, { live: true }), ...listing(conf, { live: true })];
  const r = weftOk(["install", ...dirs()]);
  assert.equal(r.lines, [
    `nothing to do: weft is installed in ${bin} (${NAMES.join(", ")}) and ${conf}/10-flannel.conflist is in place`,
  ]);
  assert.equal([...listing(bin, { live: true }), ...listing(conf, { live: true })], before);
  // --backend only checks the name: the same list, so still nothing to do.
  assert.match(weftOk(["install", ...dirs(), "--backend", "host-gw"]).stdout, /^nothing to do: /);
  assert.match(
    weftOk(["install", ...dirs(), "--skip-conf"]).stdout,
    /^nothing to do: .*no conflist \(--skip-conf\)/,
  );
});

Install("--dry-run prints what it would do and changes nothing", () => {
  const fresh = weftOk(["install", ...dirs(), "--dry-run"]);
  assert.ok(fresh.lines.length >= 9, fresh.stdout);
  for (const l of fresh.lines) assert.match(l, /^would (create|install|link|write|record) /);
  assert.not.ok(existsSync(join(root, "opt")), "no directory made");
  assert.not.ok(existsSync(join(root, "etc")));

  weftOk(["install", ...dirs()]);
  const before = [...listing(bin, { live: true }), ...listing(conf, { live: true })];
  const dual = weftOk(["install", ...dirs(), "--dual-stack", "--dry-run"]);
  assert.equal(dual.lines, [
    `would update ${conf}/10-flannel.conflist`,
    `would record what was installed in ${bin}/.weft-install.json`,
  ]);
  const un = weftOk(["uninstall", ...dirs(), "--dry-run"]);
  assert.ok(un.lines.includes(`would remove ${bin}/weft`), un.stdout);
  assert.equal([...listing(bin, { live: true }), ...listing(conf, { live: true })], before);
});

Install("--dual-stack writes the 1.0.0 list; --conflist installs a given list after validating it", () => {
  weftOk(["install", ...dirs(), "--dual-stack"]);
  assert.is(
    readFileSync(join(conf, "10-flannel.conflist"), "utf8"),
    readFileSync(join(repoRoot(), "conflists", "10-flannel-dualstack.conflist"), "utf8"),
  );
  const mine = join(root, "cni-conf.json");
  const text = `{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel","dataDir":"/x"}]}\n`;
  writeFileSync(mine, text);
  assert.equal(weftOk(["install", ...dirs(), "--conflist", mine]).lines, [
    `updated ${conf}/10-flannel.conflist`,
    `recorded what was installed in ${bin}/.weft-install.json`,
  ]);
  assert.is(readFileSync(join(conf, "10-flannel.conflist"), "utf8"), text);

  writeFileSync(mine, `{"name":"cbr0","cniVersion":"0.5.0","plugins":[{"type":"flannel"}]}`);
  const bad = runWeft(["install", ...dirs(), "--conflist", mine]);
  assert.is(bad.status, 1);
  assert.match(
    bad.stderr,
    /--conflist .*cni-conf\.json is not a network list weft can install: "cniVersion" "0\.5\.0"/,
  );
  assert.is(readFileSync(join(conf, "10-flannel.conflist"), "utf8"), text, "the installed list stays");
});

Install(
  "bad usage exits 2 naming the flag; a --from that is not weft exits 1; from sources --from is needed",
  () => {
    const backend = runWeft(["install", ...dirs(), "--backend", "udp"]);
    assert.is(backend.status, 2);
    assert.match(backend.stderr, /invalid value "udp" for --backend: allowed: vxlan, host-gw/);
    // Bad usage: the message and where the flags are, on stderr only; --help: the usage on stdout, exit 0.
    for (const [cmd, flag] of [
      ["install", "--bogus"],
      ["uninstall", "--force"],
    ] as const) {
      const r = runWeft([cmd, flag]);
      assert.is(r.status, 2);
      assert.is(r.stdout, "");
      assert.match(r.stderr, new RegExp(`^weft ${cmd}: unknown flag ${flag}; allowed flags: .*\n`));
      assert.ok(r.stderr.endsWith(`\n(weft ${cmd} --help shows the flags)\n`), r.stderr);
      const help = runWeft([cmd, flag, "--help"]);
      assert.is(help.status, 0);
      assert.ok(help.stdout.startsWith(`usage: weft ${cmd} [--bin-dir DIR]`), help.stdout);
      assert.is(help.stderr, "");
    }

    const notWeft = runWeft(["install", ...dirs(), "--from", join(REFERENCE_DIR, "bridge")]);
    assert.is(notWeft.status, 1);
    assert.is(notWeft.stderr, "weft install: --from /usr/lib/cni/bridge is not a weft executable\n");
    assert.not.ok(existsSync(join(root, "opt")));

    // Run from the compiled JS, the running executable is node: install will not copy node.
    const js = spawnSync(process.execPath, [multicallJs(), "install", ...dirs()], { encoding: "utf8" });
    assert.is(js.status, 2, js.stderr);
    assert.match(js.stderr, /give the packaged weft with --from FILE/);
    assert.not.ok(existsSync(join(root, "opt")));
  },
);

/** The reference plugins in the bin dir and flannel's own list in the conf dir: a node before weft. */
function referenceNode(): void {
  mkdirSync(bin, { recursive: true });
  mkdirSync(conf, { recursive: true });
  for (const n of ["bridge", "host-local", "portmap", "loopback"])
    copyFileSync(join(REFERENCE_DIR, n), join(bin, n));
  symlinkSync(join(REFERENCE_DIR, "tuning"), join(bin, "tuning"));
  writeFileSync(
    join(conf, "10-flannel.conflist"),
    '{ "name": "cbr0", "cniVersion": "0.3.1", "plugins": [ { "type": "flannel", "delegate": { "isDefaultGateway": true } } ] }\n',
  );
  writeFileSync(
    join(conf, "99-other.conflist"),
    '{"name":"other","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}',
  );
}

Install("a foreign plugin name is refused without --force: clear message, nothing written", () => {
  referenceNode();
  const before = [...listing(bin, { live: true }), ...listing(conf, { live: true })];
  const r = runWeft(["install", ...dirs()]);
  assert.is(r.status, 1);
  assert.is(r.stdout, "");
  for (const n of ["bridge", "host-local", "portmap"])
    assert.match(r.stderr, new RegExp(`${bin}/${n} is not weft \\(another program`));
  assert.match(r.stderr, /10-flannel\.conflist holds another network list/);
  assert.match(
    r.stderr,
    /run install with --force to replace them: each replaced file is kept as <name>\.orig/,
  );
  assert.match(r.stderr, /nothing was changed/);
  assert.equal([...listing(bin, { live: true }), ...listing(conf, { live: true })], before);
});

Install(
  "--force keeps each replaced file as <name>.orig; uninstall --restore puts them back byte-identical",
  () => {
    referenceNode();
    const before = [...listing(bin), ...listing(conf)];
    const r = weftOk(["install", ...dirs(), "--force"]);
    for (const n of ["bridge", "host-local", "portmap"]) {
      assert.ok(r.lines.includes(`kept ${bin}/${n} as ${n}.orig`), r.stdout);
      assert.ok(r.lines.includes(`replaced ${bin}/${n} -> weft`), r.stdout);
      assert.ok(readFileSync(join(bin, `${n}.orig`)).equals(readFileSync(join(REFERENCE_DIR, n))));
    }
    assert.ok(r.lines.includes(`replaced ${conf}/10-flannel.conflist`));
    assert.ok(existsSync(join(conf, "10-flannel.conflist.orig")));
    assert.ok(
      existsSync(join(bin, "loopback")) && existsSync(join(bin, "tuning")),
      "other plugins untouched",
    );
    // A second --force run has nothing left to replace.
    assert.match(weftOk(["install", ...dirs(), "--force"]).stdout, /^nothing to do: /);

    const u = weftOk(["uninstall", ...dirs(), "--restore"]);
    for (const n of ["bridge", "host-local", "portmap"])
      assert.ok(u.lines.includes(`restored ${bin}/${n} from ${bin}/${n}.orig`), u.stdout);
    assert.ok(u.lines.includes(`removed ${bin}/weft`));
    assert.equal([...listing(bin), ...listing(conf)], before, "the dirs are exactly as before");
    assert.match(weftOk(["uninstall", ...dirs(), "--restore"]).stdout, /^nothing to do: /);
  },
);

Install(
  "uninstall without --restore removes weft's files and keeps the .orig files; --restore later puts them back",
  () => {
    referenceNode();
    const before = [...listing(bin), ...listing(conf)];
    weftOk(["install", ...dirs(), "--force"]);
    const u = runWeft(["uninstall", ...dirs()]);
    assert.is(u.status, 0, u.stderr);
    assert.match(
      u.stderr,
      /kept .*bridge\.orig \(the file install replaced; 'weft uninstall --restore' puts it back\)/,
    );
    assert.not.ok(existsSync(join(bin, "bridge")));
    assert.not.ok(existsSync(join(bin, ".weft-install.json")));
    // No manifest any more: --restore still finds the .orig files.
    weftOk(["uninstall", ...dirs(), "--restore"]);
    assert.equal([...listing(bin), ...listing(conf)], before);
  },
);

Install("--restore without a manifest never puts a .orig list over a list the operator wrote since", () => {
  referenceNode();
  weftOk(["install", ...dirs(), "--force"]);
  weftOk(["uninstall", ...dirs()]);
  const mine = '{"name":"mine","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}';
  writeFileSync(join(conf, "10-flannel.conflist"), mine);
  const r = weftOk(["uninstall", ...dirs(), "--restore"]);
  assert.ok(r.lines.includes(`restored ${bin}/bridge from ${bin}/bridge.orig`), r.stdout);
  assert.not.match(r.stdout, /10-flannel\.conflist/);
  assert.is(readFileSync(join(conf, "10-flannel.conflist"), "utf8"), mine);
  assert.ok(existsSync(join(conf, "10-flannel.conflist.orig")), "the old list is still there to look at");
});

Install("uninstall leaves the dirs exactly as before; what changed since install stays", () => {
  mkdirSync(bin, { recursive: true });
  mkdirSync(conf, { recursive: true });
  copyFileSync(join(REFERENCE_DIR, "loopback"), join(bin, "loopback"));
  writeFileSync(
    join(conf, "50-other.conflist"),
    '{"name":"o","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}',
  );
  const before = [...listing(root)];
  weftOk(["install", ...dirs()]);
  weftOk(["uninstall", ...dirs()]);
  assert.equal(listing(root), before);

  // Directories install made go with it; a name replaced by the operator since is theirs.
  rmSync(join(root, "opt"), { recursive: true });
  rmSync(join(root, "etc"), { recursive: true });
  weftOk(["install", ...dirs()]);
  unlinkSync(join(bin, "portmap"));
  copyFileSync(join(REFERENCE_DIR, "portmap"), join(bin, "portmap"));
  writeFileSync(join(conf, "10-flannel.conflist"), '{"edited":true}');
  const u = weftOk(["uninstall", ...dirs()]);
  assert.match(u.stderr, /left .*\/portmap: it is no longer weft/);
  assert.match(u.stderr, /left .*10-flannel\.conflist: it changed since install wrote it/);
  assert.equal(readdirSync(bin), ["portmap"]);
  assert.equal(readdirSync(conf), ["10-flannel.conflist"]);
});

Install("a name that is a symlink to weft (filesystems without hard links) counts as installed", () => {
  weftOk(["install", ...dirs()]);
  unlinkSync(join(bin, "bridge"));
  symlinkSync("weft", join(bin, "bridge"));
  assert.match(weftOk(["install", ...dirs()]).stdout, /^nothing to do: /);
  weftOk(["uninstall", ...dirs()]);
  assert.not.ok(existsSync(join(root, "opt", "cni")), "everything install made is gone");
});

Install(
  "placeLink falls back to a relative symlink where link(2) is refused (an immutable target: EPERM)",
  () => {
    mkdirSync(bin, { recursive: true });
    const target = join(bin, "weft");
    writeFileSync(target, "#!/bin/sh\necho ok\n", { mode: 0o755 });
    const chattr = spawnSync("chattr", ["+i", target], { encoding: "utf8" });
    assert.is(chattr.status, 0, `chattr +i must work on ${tmpdir()} for this test: ${chattr.stderr}`);
    try {
      assert.is(placeLink(bin, "weft", "bridge"), "symlink");
    } finally {
      spawnSync("chattr", ["-i", target]);
    }
    assert.is(execFileSync(join(bin, "bridge"), { encoding: "utf8" }), "ok\n");
    assert.is(placeLink(bin, "weft", "portmap"), "hardlink", "a hard link where the filesystem allows one");
    assert.equal(readdirSync(bin).sort(), ["bridge", "portmap", "weft"], "no temp file left");
  },
);

/** A shell loop executing `cmd` until `stop` exists; prints each failure and, at the end, the count. */
function execLoop(stop: string, cmd: string): { proc: ChildProcess; output: Promise<string> } {
  const script = `n=0
while [ ! -e "$1" ]; do
  out=$(${cmd} 2>&1); rc=$?
  case "$rc:$out" in 0:*supportedVersions*|0:weft\\ v*) ;; *) echo "FAIL rc=$rc: $out";; esac
  n=$((n+1))
done
echo "RUNS $n"`;
  const proc = spawn("bash", ["-c", script, "loop", stop], { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  proc.stdout!.on("data", (d) => {
    text += d;
  });
  proc.stderr!.on("data", (d) => {
    text += d;
  });
  return { proc, output: new Promise((resolve) => proc.on("close", () => resolve(text))) };
}

Install("atomic: plugins executed in a loop while install replaces the executable never fail", async () => {
  weftOk(["install", ...dirs()]);
  // A second build: the same program with bytes appended, so the content differs and each install
  // replaces the executable under the running loops.
  const other = join(root, "weft-b");
  copyFileSync(weftExe(), other);
  appendFileSync(other, Buffer.from("\nweft install atomicity test\n"));
  const stop = join(root, "stop");
  const loops = [
    execLoop(stop, `env -i CNI_COMMAND=VERSION "${bin}/bridge"`),
    execLoop(stop, `"${bin}/weft" version`),
  ];
  try {
    for (let i = 0; i < 6; i++) {
      const from = i % 2 === 0 ? other : weftExe();
      const r = weftOk(["install", ...dirs(), "--from", from]);
      assert.ok(
        r.lines.includes(
          `upgraded ${bin}/weft (a copy of ${from}, ${(statSync(from).size / MiB).toFixed(0)} MiB)`,
        ),
        r.stdout,
      );
      assert.is(statSync(join(bin, "weft")).size, statSync(from).size);
      assert.is(
        statSync(join(bin, "bridge")).ino,
        statSync(join(bin, "weft")).ino,
        "relinked to the new file",
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    writeFileSync(stop, "");
  }
  const outputs = await Promise.all(loops.map((l) => l.output));
  for (const out of outputs) {
    assert.not.match(out, /FAIL/, out);
    const runs = Number(/RUNS (\d+)/.exec(out)?.[1] ?? 0);
    assert.ok(runs >= 10, `the loop ran ${runs} times during the upgrades`);
  }
  assert.equal(
    readdirSync(bin).filter((f) => f.includes(".tmp")),
    [],
    "no temp file left",
  );
});

Install.run();

/**
 * --purge in a node's network namespace: real state first (a pod with a hostPort through the installed
 * list with bridge ipMasq, weftd's chains, a flannel.1 VXLAN device, portmap's nftables table), then
 * `weft uninstall --purge` removes all of it and says what it removed.
 */
const Purge = suite("weft uninstall --purge");

interface Node {
  ns: TestNetns;
  pod: TestNetns;
  root: string;
  bin: string;
  conf: string;
}
let node: Node | undefined;

Purge.before(() => {
  assertRoot();
});
Purge.after.each(() => {
  node?.pod.delete();
  node?.ns.delete();
  if (node) rmSync(node.root, { recursive: true, force: true });
  node = undefined;
});

/** Both families' rules in the node, without iptables-save's time-stamped comments. */
const saveAll = (ns: TestNetns) =>
  ["iptables-save", "ip6tables-save"]
    .map((t) => ns.exec([t]))
    .join("")
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");

Purge(
  "removes the bridge and its veths, flannel.1, every chain and table, the state dirs, and says so",
  async () => {
    const ns = TestNetns.create("wpg");
    const pod = TestNetns.create("wpgp");
    const r = mkdtempSync(join(tmpdir(), "weft-purge-"));
    node = { ns, pod, root: r, bin: join(r, "bin"), conf: join(r, "net.d") };
    writeFileSync(
      join(r, "subnet.env"),
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
    );
    const list = {
      name: "cbr0",
      cniVersion: "1.0.0",
      plugins: [
        {
          type: "flannel",
          subnetFile: join(r, "subnet.env"),
          dataDir: join(r, "flannel"),
          ipam: { dataDir: join(r, "ipam") },
          delegate: { hairpinMode: true, isDefaultGateway: true },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    };
    writeFileSync(join(r, "list.conflist"), JSON.stringify(list, null, 2));
    const dirArgs = ["--bin-dir", node.bin, "--conf-dir", node.conf];
    weftOk(["install", ...dirArgs, "--conflist", join(r, "list.conflist")], { netns: ns });

    const add = cnitool("add", "cbr0", pod.path, {
      confDir: node.conf,
      cniPath: node.bin,
      cacheDir: join(r, "cache"),
      clientNetns: ns.path,
      containerId: "purge-pod",
      capArgs: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: "tcp" }] },
    });
    assert.is(add.status, 0, add.stdout + add.stderr);
    await ensureFlannelRules({
      netns: ns.path,
      ipMasq: true,
      forwardRules: true,
      network: "10.244.0.0/16",
      subnet: "10.244.7.0/24",
    });
    ns.exec(["ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning"]);
    ns.exec(["nft", "add", "table", "ip", "cni_hostport"]);

    const rules = saveAll(ns);
    for (const c of ["CNI-HOSTPORT-DNAT", "CNI-DN-", "FLANNEL-POSTRTG", "FLANNEL-FWD"])
      assert.match(rules, c);
    assert.match(rules, /:CNI-[0-9a-f]{24} /, "bridge ipMasq chain");
    const veths = ns
      .ipJson<Array<{ ifname: string }>>(["link", "show", "master", "cni0"])
      .map((l) => l.ifname);
    assert.is(veths.length, 1);

    // The dry run names everything and removes nothing.
    const dry = weftOk(["uninstall", ...dirArgs, "--purge", "--dry-run"], { netns: ns });
    assert.ok(dry.lines.includes("would delete link cni0 (bridge)"), dry.stdout);
    assert.is(saveAll(ns), rules);

    const u = weftOk(["uninstall", ...dirArgs, "--purge"], { netns: ns });
    const said = u.stdout;
    assert.ok(u.lines.includes(`deleted link ${veths[0]} (pod veth on cni0)`), said);
    assert.ok(u.lines.includes("deleted link cni0 (bridge)"), said);
    assert.ok(u.lines.includes("deleted link flannel.1 (flannel's VXLAN device)"), said);
    for (const c of [
      "nat CNI-HOSTPORT-DNAT",
      "nat CNI-HOSTPORT-SETMARK",
      "nat CNI-HOSTPORT-MASQ",
      "nat FLANNEL-POSTRTG",
      "filter FLANNEL-FWD",
    ])
      assert.ok(u.lines.includes(`removed iptables chain ${c} (IPv4)`), `${c}: ${said}`);
    assert.match(said, /^removed iptables chain nat CNI-DN-[0-9a-f]+ \(IPv4\)$/m);
    assert.match(said, /^removed iptables chain nat CNI-[0-9a-f]{24} \(IPv4\)$/m);
    assert.ok(u.lines.includes("removed nftables table ip cni_hostport"), said);
    assert.ok(
      u.lines.includes(`removed ${join(r, "flannel")} (flannel's saved delegate configs: 1 file)`),
      said,
    );
    assert.match(
      said,
      new RegExp(
        `^removed ${join(r, "ipam", "cbr0")} \\(host-local's reservations of cbr0: \\d files\\)$`,
        "m",
      ),
    );
    assert.ok(u.lines.includes(`removed ${node.bin}/weft`), said);
    // portmap's record of the pod's ADD (plugins/portmap/record.ts), written in the node's namespace.
    assert.ok(
      u.lines.includes(`removed ${join(RECORD_DIR, "cbr0")} (portmap's records of cbr0: 1 file)`),
      said,
    );
    assert.equal(recordsOf("cbr0", statSync(ns.path).ino), []);

    assert.equal(
      ns.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
      ["lo"],
    );
    assert.not.match(saveAll(ns), /CNI-|FLANNEL-/);
    assert.is(ns.exec(["nft", "list", "tables"]).includes("cni_hostport"), false);
    assert.not.ok(existsSync(join(r, "flannel")));
    assert.not.ok(existsSync(join(r, "ipam", "cbr0")));
    assert.not.ok(existsSync(node.bin), "install made the bin dir, uninstall took it");

    const again = weftOk(["uninstall", ...dirArgs, "--purge"], { netns: ns });
    assert.match(again.stdout, /^nothing to do: /);
  },
);

Purge("keeps portmap's shared chains while another network's container still uses them", () => {
  const ns = TestNetns.create("wpg");
  const r = mkdtempSync(join(tmpdir(), "weft-purge-"));
  node = { ns, pod: TestNetns.create("wpgp"), root: r, bin: join(r, "bin"), conf: join(r, "net.d") };
  // The node's own list with private directories: without one, purge would take the plugins' defaults.
  mkdirSync(node.conf);
  writeFileSync(
    join(node.conf, "10-flannel.conflist"),
    JSON.stringify({
      name: "cbr0",
      cniVersion: "1.0.0",
      plugins: [{ type: "flannel", dataDir: join(r, "flannel"), ipam: { dataDir: join(r, "ipam") } }],
    }),
  );
  const other = "CNI-DN-0123456789abcdef01234";
  ns.exec(
    ["iptables-restore", "--noflush"],
    `*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:${other} - [0:0]\n-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"othernet\\" id: \\"c1\\"" -m multiport --destination-ports 80 -j ${other}\nCOMMIT\n`,
  );
  const u = runWeft(["uninstall", "--bin-dir", node.bin, "--conf-dir", node.conf, "--purge"], { netns: ns });
  assert.is(u.status, 0, u.stderr);
  assert.match(u.stderr, /kept portmap's CNI-HOSTPORT-DNAT \(IPv4\): 1 rule\(s\) of other networks use it/);
  assert.match(saveAll(ns), new RegExp(`:${other} `));
});

Purge.run();
