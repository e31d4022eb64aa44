import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "../../shared/net/random.js";
import { randomVethName } from "../../shared/net/veth.js";

test("randomBytes returns the requested number of bytes, different each call", () => {
  for (const n of [0, 1, 4, 6, 32]) assert.is(randomBytes(n).length, n);
  const seen = new Set(Array.from({ length: 20 }, () => randomBytes(8).toString("hex")));
  assert.is(seen.size, 20);
});

test("veth names keep the reference's form: veth + 8 hex digits", () => {
  for (let i = 0; i < 20; i++) assert.match(randomVethName(), /^veth[0-9a-f]{8}$/);
});

test.run();
