import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  type FuzzTarget,
  fromPlain,
  mutate,
  Obj,
  PLUGINS,
  planCase,
  Raw,
  Rng,
  schedule,
  toText,
  VERBS,
} from "../helpers/fuzz.js";

// The fuzz test's generator (test/integration/fuzz.test.ts): a failure is only useful if its seed replays it.

const t: FuzzTarget = {
  netName: "fz",
  podNetns: "/var/run/netns/pod",
  nodeNetns: "/var/run/netns/node",
  cniPath: "/opt/cni/bin",
  dir: "/tmp/case",
  containerId: "cid",
};

test("the same seed and index make the same case; another index another one", () => {
  const make = (seed: number, index: number) => mutate(planCase(seed, index, "bridge", "ADD", t), t);
  const a = make(7, 3);
  const b = make(7, 3);
  assert.equal([a.stdin, a.env, a.mutations], [b.stdin, b.env, b.mutations]);
  const others = [4, 5, 6, 7].map((i) => make(7, i).stdin);
  assert.ok(
    others.some((s) => s !== a.stdin),
    "other indexes differ",
  );
});

test("the text keeps duplicate keys and number text JSON.stringify cannot write", () => {
  const doc = new Obj([
    ["mtu", new Raw("1e400")],
    ["MTU", 1450],
    ["mtu", -0.5],
  ]);
  assert.is(toText(doc), '{"mtu":1e400,"MTU":1450,"mtu":-0.5}');
  assert.is(toText(fromPlain({ a: [null, "x\n"] })), '{"a":[null,"x\\n"]}');
});

test("the schedule covers every plugin with every verb, in any prefix of a round", () => {
  const pairs = new Set(schedule(PLUGINS.length * VERBS.length).map((c) => `${c.plugin} ${c.verb}`));
  assert.is(pairs.size, PLUGINS.length * VERBS.length);
});

test("the PRNG is the same sequence for the same seed", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.u32());
  assert.equal(
    xs,
    Array.from({ length: 5 }, () => b.u32()),
  );
  assert.not.equal(
    xs,
    Array.from({ length: 5 }, () => new Rng(43).u32()),
  );
});

test.run();
