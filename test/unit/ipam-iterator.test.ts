import { test } from "uvu";
import * as assert from "uvu/assert";
import { roundRobin } from "../../shared/ipam/iterator.js";
import { canonicalizeRangeSet } from "../../shared/ipam/range-set.js";
import { formatIp, parseIp, tryParseCidr } from "../../shared/net/ipaddr.js";

const walk = (subnets: Array<Record<string, string>>, last?: string) => {
  const set = canonicalizeRangeSet(
    subnets.map((r) => ({
      subnet: tryParseCidr(r.subnet!),
      rangeStart: r.start ? parseIp(r.start) : undefined,
      rangeEnd: r.end ? parseIp(r.end) : undefined,
    })),
  );
  return [...roundRobin(set, last ? parseIp(last) : undefined)].map((c) => formatIp(c.ip));
};

test("the iterator from the beginning, middle and end (reference allocator_test)", () => {
  const sub = [{ subnet: "192.168.1.0/29" }];
  assert.equal(walk(sub), ["192.168.1.2", "192.168.1.3", "192.168.1.4", "192.168.1.5", "192.168.1.6"]);
  assert.equal(walk(sub, "192.168.1.6"), [
    "192.168.1.2",
    "192.168.1.3",
    "192.168.1.4",
    "192.168.1.5",
    "192.168.1.6",
  ]);
  assert.equal(walk(sub, "192.168.1.3"), [
    "192.168.1.4",
    "192.168.1.5",
    "192.168.1.6",
    "192.168.1.2",
    "192.168.1.3",
  ]);
});

test("the iterator moves from the end of one range to the start of the next", () => {
  const subs = [
    { subnet: "192.168.1.0/30", start: "192.168.1.0", end: "192.168.1.3" },
    { subnet: "192.168.2.0/30", start: "192.168.2.0", end: "192.168.2.3" },
  ];
  // rangeStart may be the network address when configured so; the gateway (.1) is still skipped.
  assert.equal(walk(subs, "192.168.1.3"), [
    "192.168.2.0",
    "192.168.2.2",
    "192.168.2.3",
    "192.168.1.0",
    "192.168.1.2",
    "192.168.1.3",
  ]);
});

test.run();
