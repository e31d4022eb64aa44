import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  forwardRules,
  hasRandomFully,
  masqRules,
  planTable,
  restoreInput,
  teardownTable,
} from "../../daemon/rules.js";

// flanneld's rules (pkg/trafficmngr/iptables/iptables.go masqRules, masqIP6Rules, forwardRules) as
// iptables-save prints them, for Network 10.244.0.0/16 and the lease 10.244.1.0/24.
const FLANNEL_MASQ_V4 = [
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
];

test("masquerade rules: flanneld's, rule for rule, in its order", () => {
  assert.equal(masqRules(4, "10.244.0.0/16", "10.244.1.0/24", true), FLANNEL_MASQ_V4);
});

test("v6 masquerade rules: ff00::/8, and plain MASQUERADE without --random-fully", () => {
  assert.equal(masqRules(6, "fd10::/48", "fd10:0:0:1::/64", false), [
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s fd10:0:0:1::/64 -d fd10::/48 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s fd10::/48 -d fd10:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s fd10::/48 -d fd10:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s fd10::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE',
    '-A FLANNEL-POSTRTG ! -s fd10::/48 -d fd10::/48 -m comment --comment "flanneld masq" -j MASQUERADE',
  ]);
});

test("forward rules: flanneld's", () => {
  assert.equal(forwardRules("10.244.0.0/16"), [
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  ]);
});

const saved = (rules: string[], chains = ["FLANNEL-POSTRTG"]) =>
  [
    ":PREROUTING ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...chains.map((c) => `:${c} - [0:0]`),
    '-A POSTROUTING -s 10.9.0.0/16 -m comment --comment "someone else" -j MASQUERADE',
    ...rules,
  ].join("\n");

test("planTable: nothing there -> the chain, its rules and the jump, appended", () => {
  assert.equal(planTable(saved([], []), FLANNEL_MASQ_V4), [
    ":FLANNEL-POSTRTG - [0:0]",
    ...FLANNEL_MASQ_V4.slice(1),
    FLANNEL_MASQ_V4[0]!,
  ]);
});

test("planTable: all in place (whatever the quoting) -> nothing to do", () => {
  const requoted = FLANNEL_MASQ_V4.map((l) => l.replace('"flanneld masq"', "'flanneld masq'"));
  assert.equal(planTable(saved(requoted), FLANNEL_MASQ_V4), []);
});

test("planTable: a flushed chain is rewritten; the jump stays", () => {
  assert.equal(planTable(saved([FLANNEL_MASQ_V4[0]!]), FLANNEL_MASQ_V4), [
    ":FLANNEL-POSTRTG - [0:0]",
    ...FLANNEL_MASQ_V4.slice(1),
  ]);
});

test("planTable: a missing jump is appended; a duplicate one deleted", () => {
  assert.equal(planTable(saved(FLANNEL_MASQ_V4.slice(1)), FLANNEL_MASQ_V4), [FLANNEL_MASQ_V4[0]!]);
  assert.equal(planTable(saved([FLANNEL_MASQ_V4[0]!, ...FLANNEL_MASQ_V4]), FLANNEL_MASQ_V4), [
    `-D${FLANNEL_MASQ_V4[0]!.slice(2)}`,
  ]);
});

test("planTable: a stray or out-of-order rule in our chain (an old lease's) gets the chain rewritten", () => {
  const old = FLANNEL_MASQ_V4.map((l) => l.replaceAll("10.244.1.0/24", "10.244.7.0/24"));
  assert.equal(planTable(saved(old), FLANNEL_MASQ_V4), [
    ":FLANNEL-POSTRTG - [0:0]",
    ...FLANNEL_MASQ_V4.slice(1),
  ]);
  const swapped = [FLANNEL_MASQ_V4[0]!, ...FLANNEL_MASQ_V4.slice(1).reverse()];
  assert.equal(planTable(saved(swapped), FLANNEL_MASQ_V4).length, FLANNEL_MASQ_V4.length);
});

test("restoreInput: one transaction holding every table that changes", () => {
  assert.is(
    restoreInput([
      { table: "nat", lines: ["-A X"] },
      { table: "filter", lines: [] },
      { table: "filter", lines: ["-A Y"] },
    ]),
    "*nat\n-A X\nCOMMIT\n*filter\n-A Y\nCOMMIT\n",
  );
});

test("teardownTable: jumps first (from any chain), then flush and delete", () => {
  const s = saved([...FLANNEL_MASQ_V4, '-A OUTPUT -m comment --comment "x" -j FLANNEL-POSTRTG']);
  assert.equal(teardownTable(s, "FLANNEL-POSTRTG"), [
    `-D${FLANNEL_MASQ_V4[0]!.slice(2)}`,
    '-D OUTPUT -m comment --comment "x" -j FLANNEL-POSTRTG',
    "-F FLANNEL-POSTRTG",
    "-X FLANNEL-POSTRTG",
  ]);
  assert.equal(teardownTable(saved([], []), "FLANNEL-POSTRTG"), []);
});

test("--random-fully when iptables is 1.6.2 or newer (go-iptables' HasRandomFully)", () => {
  assert.ok(hasRandomFully("iptables v1.8.9 (nf_tables)"));
  assert.ok(hasRandomFully("ip6tables v1.6.2"));
  assert.not.ok(hasRandomFully("iptables v1.6.1"));
  assert.not.ok(hasRandomFully("iptables v1.4.21"));
  assert.not.ok(hasRandomFully("garbage"));
});

test.run();
