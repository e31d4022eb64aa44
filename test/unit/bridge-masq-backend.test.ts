/**
 * bridge's ipMasqBackend selection (reference: "auto means iptables unless iptables is unusable and nft
 * is usable"), with the tools' usability given as values; the probes themselves run in the integration
 * tests (an ipMasq ADD without ipMasqBackend installs the iptables chain on this host).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { pickIpMasqBackend } from "../../plugins/bridge/masq-backend.js";

const combos = [
  { iptables: true, nftables: true },
  { iptables: true, nftables: false },
  { iptables: false, nftables: true },
  { iptables: false, nftables: false },
];

test("a configured backend is used whatever the tools' state", () => {
  for (const usable of combos) {
    assert.is(pickIpMasqBackend("iptables", usable), "iptables", JSON.stringify(usable));
    assert.is(pickIpMasqBackend("nftables", usable), "nftables", JSON.stringify(usable));
  }
});

test("unset: iptables while it is usable, even when nft is too", () => {
  assert.is(pickIpMasqBackend(undefined, { iptables: true, nftables: true }), "iptables");
  assert.is(pickIpMasqBackend(undefined, { iptables: true, nftables: false }), "iptables");
});

test("unset: nftables when iptables is unusable and nft is usable", () => {
  assert.is(pickIpMasqBackend(undefined, { iptables: false, nftables: true }), "nftables");
});

test("unset: iptables when neither is usable (its error is the one reported)", () => {
  assert.is(pickIpMasqBackend(undefined, { iptables: false, nftables: false }), "iptables");
});

test.run();
