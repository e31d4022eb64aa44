import { test } from "uvu";
import * as assert from "uvu/assert";
import { isBackendDeletion } from "../../daemon/daemon.js";

test("deletions of what the backends program trigger a reconcile; pod churn and additions do not", () => {
  for (const line of [
    "Deleted 10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink ",
    "Deleted 10.244.2.0/24 via 192.168.77.2 dev eth0 proto 87 ",
    "Deleted 7: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN ",
    "Deleted 10.244.2.0 dev flannel.1 lladdr aa:bb:cc:dd:ee:ff PERMANENT",
    "Deleted fd00:0:0:2::/64 via fd00:0:0:2:: dev flannel-v6.1 proto 87 onlink ",
  ]) {
    assert.ok(isBackendDeletion(line), line);
  }
  for (const line of [
    "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 87 onlink ",
    "Deleted 12: veth1a2b3c4d@if2: <BROADCAST,MULTICAST> mtu 1450 master cni0",
    "Deleted 10.244.1.5 dev cni0 lladdr 02:00:00:00:00:05 STALE",
    "Deleted 192.168.0.0/16 via 192.168.77.254 dev eth0 proto 870",
  ]) {
    assert.not.ok(isBackendDeletion(line), line);
  }
});

test.run();
