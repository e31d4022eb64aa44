import { test } from "uvu";
import * as assert from "uvu/assert";
import { teardownChains } from "../../cli/install/purge.js";

const NAT = `:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-HOSTPORT-SETMARK - [0:0]
:CNI-DN-abc - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -j KUBE-SERVICES
-A CNI-DN-abc -s 10.1.0.0/24 -p tcp -m tcp --dport 80 -j CNI-HOSTPORT-SETMARK
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"c1\\"" -j CNI-DN-abc
-A CNI-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000`;

test("chains that jump to each other: jumps from the chains that stay, then every flush, then every delete", () => {
  // Regression: flush and delete interleaved per chain made iptables-nft refuse the transaction (EBUSY on
  // CNI-DN-abc) when CNI-HOSTPORT-DNAT, which referred to it, was flushed after it in the same restore.
  assert.equal(teardownChains(NAT, ["CNI-DN-abc", "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-GONE"]), [
    "-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    "-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    "-F CNI-DN-abc",
    "-F CNI-HOSTPORT-DNAT",
    "-F CNI-HOSTPORT-SETMARK",
    "-X CNI-DN-abc",
    "-X CNI-HOSTPORT-DNAT",
    "-X CNI-HOSTPORT-SETMARK",
  ]);
});

test("nothing present, nothing to do", () => {
  assert.equal(teardownChains(NAT, ["FLANNEL-POSTRTG"]), []);
});

test.run();
