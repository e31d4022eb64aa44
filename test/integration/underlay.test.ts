import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertRoot } from "../helpers/netns.js";
import { Underlay } from "../helpers/underlay.js";

test("nodes on one underlay reach each other; their default route leaves by eth0", () => {
  assertRoot();
  const u = Underlay.create(2);
  try {
    const [a, b] = u.nodes;
    assert.ok(a && b);
    a.netns.exec(["ping", "-c1", "-W2", b.ip]);
    const joined = u.addNode();
    joined.netns.exec(["ping", "-c1", "-W2", a.ip]);
    const routes = a.netns.ipJson<Array<{ dst: string; dev: string }>>(["route", "show", "default"]);
    assert.is(routes[0]?.dev, "eth0");
  } finally {
    u.destroy();
  }
});

test.run();
