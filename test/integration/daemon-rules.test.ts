/**
 * flanneld's FLANNEL-POSTRTG / FLANNEL-FWD rules installed by weftd inside a node namespace (never the
 * host's tables): flanneld's exact rules, one save and at most one restore per family per resync, a
 * second resync changes nothing, a flushed chain or a lost jump comes back, rules flanneld made are
 * recognised as in place, and the removal leaves only what others made.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ensureFlannelRules, type FlannelRulesSpec, removeFlannelRules } from "../../daemon/rules.js";
import { FORWARD_JUMP } from "../helpers/flannel-rules.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";

const s = suite("flannel iptables rules");
let ns: TestNetns;
let shims: string;
const calls = () => readFileSync(join(shims, "calls"), "utf8").split("\n").filter(Boolean);

const spec = (over: Partial<FlannelRulesSpec> = {}): FlannelRulesSpec => ({
  netns: ns.path,
  ipMasq: true,
  forwardRules: true,
  network: "10.244.0.0/16",
  subnet: "10.244.1.0/24",
  ipv6Network: "fd10::/48",
  ipv6Subnet: "fd10:0:0:1::/64",
  ...over,
});

// flanneld's rules as its source builds them (iptables.go), in iptables-save's words.
const MASQ_V4 = [
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
];
const MASQ_V6 = [
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s fd10:0:0:1::/64 -d fd10::/48 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s fd10::/48 -d fd10:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s fd10::/48 -d fd10:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s fd10::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s fd10::/48 -d fd10::/48 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
];
const FWD_V4 = [
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
];

const save = (family: 4 | 6, table?: string) =>
  ns
    .exec([family === 4 ? "iptables-save" : "ip6tables-save", ...(table ? ["-t", table] : [])])
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"));
const flannelLines = (family: 4 | 6, table: string) =>
  save(family, table).filter((l) => l.includes("FLANNEL-") || l.includes("flanneld"));
const ipt = (family: 4 | 6, args: string[]) =>
  ns.exec([family === 4 ? "iptables" : "ip6tables", "-w", ...args]);

/** A resync with the record of saves and restores emptied first: what it changed, and what it ran. */
async function resync(): Promise<{ changed: string[]; calls: string[] }> {
  writeFileSync(join(shims, "calls"), "");
  const out = await ensureFlannelRules(spec());
  return { changed: out.changed, calls: calls() };
}
const SAVE_AND_RESTORE = ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"];

/** The IPv4 tables hold flanneld's two chains, exactly. */
function assertIpv4Rules(): void {
  assert.equal(flannelLines(4, "nat"), [":FLANNEL-POSTRTG - [0:0]", ...MASQ_V4]);
  assert.equal(flannelLines(4, "filter"), [":FLANNEL-FWD - [0:0]", ...FWD_V4]);
}

s.before(() => {
  assertRoot();
  ns = TestNetns.create("wrl");
  // Shims in front of PATH record every save and restore (nsenter finds them through PATH too).
  shims = mkdtempSync(join(tmpdir(), "weft-rules-shims-"));
  for (const tool of ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]) {
    const file = join(shims, tool);
    writeFileSync(file, `#!/bin/sh\necho ${tool} >> "${shims}/calls"\nexec /usr/sbin/${tool} "$@"\n`);
    chmodSync(file, 0o755);
  }
  writeFileSync(join(shims, "calls"), "");
  process.env.PATH = `${shims}:${process.env.PATH}`;
  // Someone else's rules, which must never move.
  ipt(4, ["-t", "nat", "-A", "POSTROUTING", "-s", "10.9.0.0/16", "-j", "MASQUERADE"]);
  ipt(4, ["-t", "filter", "-A", "FORWARD", "-i", "lo", "-j", "ACCEPT"]);
});
s.after(() => {
  process.env.PATH = process.env.PATH!.split(":").slice(1).join(":");
  rmSync(shims, { recursive: true, force: true });
  ns?.delete();
});

s(
  "installed: flanneld's rules in both tables and families, one save and one restore per family",
  async () => {
    const r = await resync();
    assert.equal(r.changed, [
      "IPv4 nat FLANNEL-POSTRTG",
      "IPv4 filter FLANNEL-FWD",
      "IPv6 nat FLANNEL-POSTRTG",
      "IPv6 filter FLANNEL-FWD",
    ]);
    assert.equal(r.calls, SAVE_AND_RESTORE);
    assertIpv4Rules();
    assert.equal(flannelLines(6, "nat"), [":FLANNEL-POSTRTG - [0:0]", ...MASQ_V6]);
    assert.equal(flannelLines(6, "filter"), [
      ":FLANNEL-FWD - [0:0]",
      ...FWD_V4.map((l) => l.replace("10.244.0.0/16", "fd10::/48")),
    ]);
    // The jumps are appended after the rules already there, as flanneld appends them.
    assert.equal(
      save(4, "nat").filter((l) => l.startsWith("-A POSTROUTING")),
      ["-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE", MASQ_V4[0]!],
    );
  },
);

s("a second resync changes nothing: no restore, byte-identical iptables-save", async () => {
  const before = [save(4), save(6)];
  const r = await resync();
  assert.equal(r.changed, []);
  assert.equal(r.calls, ["iptables-save", "ip6tables-save"]);
  assert.equal([save(4), save(6)], before);
});

s("a flushed chain, a lost jump and a deleted chain come back in one restore", async () => {
  ipt(4, ["-t", "nat", "-F", "FLANNEL-POSTRTG"]);
  ipt(4, ["-t", "filter", "-D", ...FORWARD_JUMP]);
  ipt(6, ["-t", "filter", "-D", ...FORWARD_JUMP]);
  ipt(6, ["-t", "filter", "-F", "FLANNEL-FWD"]);
  ipt(6, ["-t", "filter", "-X", "FLANNEL-FWD"]);
  const r = await resync();
  assert.equal(r.changed, ["IPv4 nat FLANNEL-POSTRTG", "IPv4 filter FLANNEL-FWD", "IPv6 filter FLANNEL-FWD"]);
  assert.equal(r.calls, SAVE_AND_RESTORE);
  assertIpv4Rules();
  assert.is(flannelLines(6, "filter").length, 4);
});

s("a stray rule in our chain goes; a new lease's rules replace the old ones", async () => {
  ipt(4, ["-t", "nat", "-I", "FLANNEL-POSTRTG", "1", "-j", "RETURN"]);
  await ensureFlannelRules(spec());
  assert.equal(flannelLines(4, "nat"), [":FLANNEL-POSTRTG - [0:0]", ...MASQ_V4]);
  await ensureFlannelRules(spec({ subnet: "10.244.7.0/24" }));
  assert.equal(flannelLines(4, "nat"), [
    ":FLANNEL-POSTRTG - [0:0]",
    ...MASQ_V4.map((l) => l.replaceAll("10.244.1.0/24", "10.244.7.0/24")),
  ]);
  await ensureFlannelRules(spec());
});

s("rules flanneld made (go-iptables, one iptables call per rule) are found in place", async () => {
  await removeFlannelRules({ netns: ns.path });
  ipt(4, ["-t", "nat", "-N", "FLANNEL-POSTRTG"]);
  ipt(4, ["-t", "filter", "-N", "FLANNEL-FWD"]);
  const asFlanneld = (line: string, table: string) => {
    const args = line.split(" ");
    // The comment is one argument to iptables (no shell in between).
    const i = args.indexOf('"flanneld');
    if (i >= 0) args.splice(i, 2, args[i + 1]!.startsWith("masq") ? "flanneld masq" : "flanneld forward");
    ipt(4, ["-t", table, ...args]);
  };
  for (const l of MASQ_V4.slice(1)) asFlanneld(l, "nat");
  asFlanneld(MASQ_V4[0]!, "nat");
  for (const l of FWD_V4.slice(1)) asFlanneld(l, "filter");
  asFlanneld(FWD_V4[0]!, "filter");
  const before = save(4);
  const out = await ensureFlannelRules(spec({ ipv6Network: undefined, ipv6Subnet: undefined }));
  assert.equal(out.changed, []);
  assert.equal(save(4), before);
});

s("without --random-fully support (or with it turned off): plain MASQUERADE", async () => {
  await ensureFlannelRules(spec({ randomFully: false }));
  assert.equal(
    flannelLines(4, "nat").filter((l) => l.includes("MASQUERADE")),
    MASQ_V4.filter((l) => l.includes("MASQUERADE")).map((l) => l.replace(" --random-fully", "")),
  );
});

s("only what is asked: no --ip-masq, no forward rules, no family without a network", async () => {
  await removeFlannelRules({ netns: ns.path });
  const out = await ensureFlannelRules(spec({ ipMasq: false, ipv6Network: undefined }));
  assert.equal(out.changed, ["IPv4 filter FLANNEL-FWD"]);
  assert.equal(flannelLines(4, "nat"), []);
  assert.equal(flannelLines(6, "filter"), []);
});

s("removal takes both chains and their jumps in both families, and nothing else", async () => {
  await ensureFlannelRules(spec());
  const out = await removeFlannelRules({ netns: ns.path });
  assert.equal(out.changed, [
    "IPv4 nat FLANNEL-POSTRTG",
    "IPv4 filter FLANNEL-FWD",
    "IPv6 nat FLANNEL-POSTRTG",
    "IPv6 filter FLANNEL-FWD",
  ]);
  for (const f of [4, 6] as const) for (const t of ["nat", "filter"]) assert.equal(flannelLines(f, t), []);
  assert.ok(save(4, "nat").includes("-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE"));
  assert.ok(save(4, "filter").includes("-A FORWARD -i lo -j ACCEPT"));
  assert.equal((await removeFlannelRules({ netns: ns.path })).changed, []);
});

s.run();
