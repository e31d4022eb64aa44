import { test } from "uvu";
import * as assert from "uvu/assert";
import { attrsOf, leaseHex } from "../../daemon/store/etcd.js";
import { describe, explain } from "../../daemon/store/etcd-client.js";
import { prefixEnd } from "../../daemon/store/etcd-watch.js";

test("prefixEnd is etcd's range end for a prefix (clientv3 GetPrefixRangeEnd)", () => {
  assert.is(
    prefixEnd(Buffer.from("/coreos.com/network/subnets/")).toString(),
    "/coreos.com/network/subnets0",
  );
  assert.equal([...prefixEnd(Buffer.from([0x61, 0xff, 0xff]))], [0x62]);
  assert.equal([...prefixEnd(Buffer.from([0xff]))], [0], "all 0xff: every key");
});

test("attrsOf reads flanneld's lease values as Go unmarshals them into LeaseAttrs", () => {
  assert.equal(
    attrsOf(
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}',
    ),
    {
      PublicIP: "10.0.0.1",
      PublicIPv6: null,
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: "aa:bb:cc:dd:ee:ff" },
    },
  );
  // A reservation as the docs write one: only PublicIP; missing fields are Go's zero values.
  assert.equal(attrsOf('{"PublicIP":"10.0.0.2"}'), { PublicIP: "10.0.0.2", PublicIPv6: null });
  assert.equal(attrsOf('{"PublicIP":"10.0.0.3","PublicIPv6":"fd00::3","BackendType":""}'), {
    PublicIP: "10.0.0.3",
    PublicIPv6: "fd00::3",
  });
  for (const bad of ["not json", "[]", "null", '"x"', '{"PublicIPv6":null}', '{"PublicIP":7}']) {
    assert.is(attrsOf(bad), undefined, bad);
  }
});

test("leaseHex prints 64-bit lease IDs as etcdctl does, without losing digits", () => {
  assert.is(leaseHex("4111120342749340168"), "390da22b8a74e208");
  assert.is(leaseHex("7587869461234567890"), "694d87129eebcad2");
});

test("etcd errors read as a cause and a hint at the fix, without grpc-js's decorations", async () => {
  const { GRPCUnavailableError } = await import("etcd3");
  const refused = new GRPCUnavailableError(
    "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379 (2026-11-30T09:00:29.738Z). Resolution note: ",
  );
  assert.is(
    describe(refused),
    "GRPCUnavailableError: 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379",
  );
  assert.match(
    explain(refused, ["http://127.0.0.1:2379"]),
    /ECONNREFUSED 127\.0\.0\.1:2379 \(nothing listens there/,
  );
  const plain = new Error("something else");
  assert.is(explain(plain, ["http://127.0.0.1:2379"]), "something else");
});

test.run();
