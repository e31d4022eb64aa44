import { test } from "uvu";
import * as assert from "uvu/assert";
import { spoofRefId, spoofRuleHandles, spoofSetupScript } from "../../shared/net/spoofchk.js";

test("setup is one nft transaction with the reference's table, chains and comments", () => {
  const ref = spoofRefId("ctr1", "eth0");
  assert.is(ref, "ctr1-eth0");
  const script = spoofSetupScript("veth0a1b2c3d", "02:11:22:33:44:55", ref).trim().split("\n");
  assert.equal(script, [
    "add table bridge nat",
    "add chain bridge nat PREROUTING { type filter hook prerouting priority -300 ; policy accept ; }",
    "add chain bridge nat cni-br-iface-ctr1-eth0",
    "add chain bridge nat cni-br-iface-ctr1-eth0-mac",
    "flush chain bridge nat cni-br-iface-ctr1-eth0",
    "flush chain bridge nat cni-br-iface-ctr1-eth0-mac",
    'add rule bridge nat PREROUTING iifname "veth0a1b2c3d" jump cni-br-iface-ctr1-eth0 comment "macspoofchk-ctr1-eth0"',
    'add rule bridge nat cni-br-iface-ctr1-eth0 jump cni-br-iface-ctr1-eth0-mac comment "macspoofchk-ctr1-eth0"',
    'add rule bridge nat cni-br-iface-ctr1-eth0-mac ether saddr 02:11:22:33:44:55 return comment "macspoofchk-ctr1-eth0"',
    'add rule bridge nat cni-br-iface-ctr1-eth0-mac drop comment "macspoofchk-ctr1-eth0"',
  ]);
});

test("teardown finds the attachment's PREROUTING rule by comment", () => {
  const listing = `table bridge nat {
	chain PREROUTING { # handle 1
		type filter hook prerouting priority dstnat; policy accept;
		iifname "vethaaaa" jump cni-br-iface-a-eth0 comment "macspoofchk-a-eth0" # handle 4
		iifname "vethbbbb" jump cni-br-iface-b-eth0 comment "macspoofchk-b-eth0" # handle 7
	}
}`;
  assert.equal(spoofRuleHandles(listing, "b-eth0"), [7]);
  assert.equal(spoofRuleHandles(listing, "c-eth0"), []);
});

test.run();
