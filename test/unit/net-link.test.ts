import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  isPromisc,
  kindOf,
  type LinkRecord,
  linkNamed,
  linkStateSource,
  validLinkName,
} from "../../shared/net/link.js";
import { sysfsAttr, sysfsShows } from "../../shared/net/sysfs.js";

const lo = (over: Partial<LinkRecord> = {}): LinkRecord => ({
  ifindex: 1,
  ifname: "lo",
  mtu: 65536,
  ...over,
});

test("link names as the kernel's dev_valid_name judges them, byte by byte", () => {
  for (const ok of ["eth0", "e\\th", 'a"b', "a#b", "x".repeat(15), "ü".repeat(7), "a\u2003b"])
    assert.ok(validLinkName(ok), JSON.stringify(ok));
  for (const bad of ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\nb", "x".repeat(16), "ü".repeat(8)])
    assert.not.ok(validLinkName(bad), JSON.stringify(bad));
  // The kernel's isspace includes 0xA0, which "à" (C3 A0) carries in UTF-8; U+2003 (E2 80 83) does not.
  assert.not.ok(validLinkName("à"));
  assert.not.ok(validLinkName("a\u00a0b"));
});

test("records: kind, IFF_PROMISC from the flags, lookup by name in a read", () => {
  const br: LinkRecord = {
    ifindex: 7,
    ifname: "cni0",
    mtu: 1450,
    flags: ["BROADCAST", "MULTICAST", "PROMISC", "UP"],
    promiscuity: 2,
    linkinfo: { info_kind: "bridge" },
  };
  assert.is(kindOf(br), "bridge");
  assert.ok(isPromisc(br));
  // A promiscuity count raised by a packet socket is not the user's setting.
  assert.not.ok(isPromisc({ ...br, flags: ["UP"], promiscuity: 1 }));
  assert.is(linkNamed([lo(), br], "cni0"), br);
  assert.is(linkNamed([lo()], "cni0"), undefined);
  assert.is(linkNamed(undefined, "cni0"), undefined);
});

test("sysfs is trusted only when it shows a link as ip reported it", () => {
  // Unit tests run in one namespace whose /sys is its own: lo is ifindex 1 with no peer.
  assert.ok(sysfsShows(lo()));
  assert.is(linkStateSource(lo()).from, "sysfs");
  assert.not.ok(sysfsShows(lo({ ifindex: 2 })), "another ifindex");
  assert.not.ok(sysfsShows(lo({ link_index: 5 })), "a peer sysfs does not show");
  assert.not.ok(sysfsShows({ ifindex: 9, ifname: "vethab12cd34", mtu: 1500, link_index: 2 }), "absent");
  assert.is(linkStateSource({ ifindex: 9, ifname: "vethab12cd34", mtu: 1500 }).from, "ip");
  assert.is(linkStateSource(undefined).from, "ip");
});

test("sysfs reads: an attribute, none for a missing link or a name that is no directory entry", () => {
  assert.is(sysfsAttr("lo", "ifindex"), "1");
  assert.is(sysfsAttr("no-such-link0", "ifindex"), undefined);
  for (const bad of ["", ".", "..", "../lo"]) assert.is(sysfsAttr(bad, "ifindex"), undefined, bad);
});

test.run();
